//! Recursive-descent parser over the token spans of [`super::lexer`], following Cassandra's
//! `Parser.g` production by production (4.0 syntax, plus a few later forms that cost nothing).

use super::ast::*;
use super::lexer::{self, Tok, Token};
use crate::error::CqlError;

/// Whether an unquoted word can never be an identifier (case-insensitive): Cassandra's
/// `reserved_keywords.txt`, plus the boolean literals, which Cassandra lexes as BOOLEAN tokens.
pub fn is_reserved(word: &str) -> bool {
    // Longest reserved word: "columnfamily" / "materialized" / "norecursive".
    if word.len() > 12 || word.len() < 2 {
        return false;
    }
    let mut buf = [0u8; 12];
    for (d, s) in buf.iter_mut().zip(word.bytes()) {
        *d = s.to_ascii_lowercase();
    }
    matches!(
        &buf[..word.len()],
        b"add"
            | b"allow"
            | b"alter"
            | b"and"
            | b"apply"
            | b"asc"
            | b"authorize"
            | b"batch"
            | b"begin"
            | b"by"
            | b"columnfamily"
            | b"create"
            | b"delete"
            | b"desc"
            | b"describe"
            | b"drop"
            | b"entries"
            | b"execute"
            | b"false"
            | b"from"
            | b"full"
            | b"grant"
            | b"if"
            | b"in"
            | b"index"
            | b"infinity"
            | b"insert"
            | b"into"
            | b"is"
            | b"keyspace"
            | b"limit"
            | b"materialized"
            | b"modify"
            | b"nan"
            | b"norecursive"
            | b"not"
            | b"null"
            | b"of"
            | b"on"
            | b"or"
            | b"order"
            | b"primary"
            | b"rename"
            | b"revoke"
            | b"schema"
            | b"select"
            | b"set"
            | b"table"
            | b"to"
            | b"token"
            | b"true"
            | b"truncate"
            | b"unlogged"
            | b"update"
            | b"use"
            | b"using"
            | b"view"
            | b"where"
            | b"with"
    )
}

/// Whether `name` (lower-case) is a native CQL type name.
pub fn is_native_type(name: &str) -> bool {
    crate::types::names::NATIVE_NAMES.contains(&name)
}

const PERMISSIONS: &[&str] = &[
    "create",
    "alter",
    "drop",
    "select",
    "modify",
    "authorize",
    "describe",
    "execute",
    "unmask",
    "select_masked",
];

#[derive(Debug)]
enum ErrKind {
    NoViable,
    /// `mismatched input 'x' expecting <this>`
    Mismatched(&'static str),
    /// A recognition error with its own text (Cassandra's `addRecognitionError`).
    Custom(String),
}

#[derive(Debug)]
pub(crate) struct PErr {
    tok: usize,
    kind: ErrKind,
}

type PResult<T> = Result<T, PErr>;

pub(crate) struct Parser<'a> {
    src: &'a str,
    toks: Vec<Token>,
    gaps: Vec<u8>,
    pos: usize,
    binds: Vec<Option<String>>,
    /// Current nesting of terms, types and selectors: bounded so a hostile statement cannot
    /// exhaust the stack of the thread parsing it.
    depth: usize,
}

/// Deepest nesting of collection literals, tuples, types and selector calls accepted. Real
/// schemas and literals stay far below it; every later stage (type resolution, codecs)
/// recurses at most this deep too.
pub const MAX_DEPTH: usize = 64;

/// A saved position for backtracking; markers recorded after it are forgotten on reset.
#[derive(Clone, Copy)]
struct Mark {
    pos: usize,
    binds: usize,
}

impl<'a> Parser<'a> {
    pub(crate) fn new(src: &'a str) -> Result<Self, CqlError> {
        let (toks, gaps) = lexer::tokenize(src).map_err(|e| {
            let (line, col) = line_col(src, e.offset);
            CqlError::Syntax(format!("line {line}:{col} {}", e.message))
        })?;
        Ok(Parser {
            src,
            toks,
            gaps,
            pos: 0,
            binds: Vec::new(),
            depth: 0,
        })
    }

    pub(crate) fn into_binds(self) -> Vec<Option<String>> {
        self.binds
    }

    // ---- token helpers ----

    fn tok(&self, k: usize) -> Token {
        let i = (self.pos + k).min(self.toks.len() - 1);
        self.toks[i]
    }

    fn kind(&self, k: usize) -> Tok {
        self.tok(k).kind
    }

    fn text_of(&self, t: Token) -> &'a str {
        &self.src[t.start as usize..t.end as usize]
    }

    fn text(&self, k: usize) -> &'a str {
        self.text_of(self.tok(k))
    }

    fn bump(&mut self) -> Token {
        let t = self.tok(0);
        if self.pos < self.toks.len() - 1 {
            self.pos += 1;
        }
        t
    }

    fn mark(&self) -> Mark {
        Mark {
            pos: self.pos,
            binds: self.binds.len(),
        }
    }

    fn reset(&mut self, m: Mark) {
        self.pos = m.pos;
        self.binds.truncate(m.binds);
    }

    fn at(&self, k: usize, kind: Tok) -> bool {
        self.kind(k) == kind
    }

    fn accept(&mut self, kind: Tok) -> bool {
        if self.at(0, kind) {
            self.bump();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, kind: Tok) -> PResult<Token> {
        if self.at(0, kind) {
            Ok(self.bump())
        } else {
            Err(self.err(ErrKind::Mismatched(kind.display_name())))
        }
    }

    /// Whether token `k` is the (case-insensitive) word `kw`.
    fn is_kw(&self, k: usize, kw: &str) -> bool {
        let t = self.tok(k);
        t.kind == Tok::Ident && self.text_of(t).eq_ignore_ascii_case(kw)
    }

    fn accept_kw(&mut self, kw: &str) -> bool {
        if self.is_kw(0, kw) {
            self.bump();
            true
        } else {
            false
        }
    }

    /// `kw` must be upper-case with its `K_` token name given in `name`.
    fn expect_kw(&mut self, kw: &str, name: &'static str) -> PResult<()> {
        if self.accept_kw(kw) {
            Ok(())
        } else {
            Err(self.err(ErrKind::Mismatched(name)))
        }
    }

    fn err(&self, kind: ErrKind) -> PErr {
        PErr {
            tok: self.pos,
            kind,
        }
    }

    fn no_viable(&self) -> PErr {
        self.err(ErrKind::NoViable)
    }

    fn custom(&self, msg: impl Into<String>) -> PErr {
        self.err(ErrKind::Custom(msg.into()))
    }

    // ---- identifiers ----

    /// Whether token `k` can be an identifier (`ident` / `cident` / `noncol_ident`).
    fn is_ident(&self, k: usize) -> bool {
        let t = self.tok(k);
        match t.kind {
            Tok::QuotedIdent => true,
            Tok::Ident => !is_reserved(self.text_of(t)),
            _ => false,
        }
    }

    fn ident(&mut self) -> PResult<String> {
        let t = self.tok(0);
        match t.kind {
            Tok::QuotedIdent => {
                self.bump();
                Ok(lexer::unquote(self.text_of(t)))
            }
            Tok::Ident if !is_reserved(self.text_of(t)) => {
                self.bump();
                Ok(self.text_of(t).to_ascii_lowercase())
            }
            Tok::QMark => Err(self.custom("Bind variables cannot be used for identifiers")),
            _ => Err(self.no_viable()),
        }
    }

    /// `[ks.]name`
    fn qualified_name(&mut self, what: &str) -> PResult<QualifiedName> {
        if self.at(0, Tok::QMark) {
            return Err(self.custom(format!("Bind variables cannot be used for {what} names")));
        }
        let first = self.ident()?;
        if self.accept(Tok::Dot) {
            if self.at(0, Tok::QMark) {
                return Err(self.custom(format!("Bind variables cannot be used for {what} names")));
            }
            let name = self.ident()?;
            Ok(QualifiedName {
                keyspace: Some(first),
                name,
            })
        } else {
            Ok(QualifiedName {
                keyspace: None,
                name: first,
            })
        }
    }

    fn keyspace_name(&mut self) -> PResult<String> {
        if self.at(0, Tok::QMark) {
            return Err(self.custom("Bind variables cannot be used for keyspace names"));
        }
        self.ident()
    }

    /// `roleName`: identifier, quoted name or string literal (kept as written).
    fn role_name(&mut self) -> PResult<String> {
        let t = self.tok(0);
        match t.kind {
            Tok::Str => {
                self.bump();
                Ok(lexer::unquote(self.text_of(t)))
            }
            Tok::QMark => Err(self.custom("Bind variables cannot be used for role names")),
            _ => self.ident(),
        }
    }

    /// `username` of the legacy USER statements: Cassandra keeps its case even unquoted.
    fn user_name(&mut self) -> PResult<String> {
        let t = self.tok(0);
        match t.kind {
            Tok::Str => {
                self.bump();
                Ok(lexer::unquote(self.text_of(t)))
            }
            Tok::Ident if !is_reserved(self.text_of(t)) => {
                self.bump();
                Ok(self.text_of(t).to_owned())
            }
            Tok::QuotedIdent => Err(self.custom(
                "Quoted strings are are not supported for user names and USER is deprecated, please use ROLE",
            )),
            _ => Err(self.no_viable()),
        }
    }

    /// Whether a function name (`[ks.]f`) followed by `(` starts at token `k`.
    fn function_call_ahead(&self, k: usize) -> bool {
        if !self.is_function_name(k) {
            return false;
        }
        if self.at(k + 1, Tok::LParen) {
            return true;
        }
        self.is_ident(k)
            && self.at(k + 1, Tok::Dot)
            && self.is_function_name(k + 2)
            && self.at(k + 3, Tok::LParen)
    }

    /// `allowedFunctionName`: identifiers plus `token` and `count`.
    fn is_function_name(&self, k: usize) -> bool {
        self.is_ident(k) || self.is_kw(k, "token")
    }

    fn function_name(&mut self) -> PResult<QualifiedName> {
        let part = |p: &mut Self| -> PResult<String> {
            if p.is_kw(0, "token") {
                p.bump();
                Ok("token".into())
            } else {
                p.ident()
            }
        };
        let first = part(self)?;
        if self.at(0, Tok::Dot) && self.is_function_name(1) {
            self.bump();
            let name = part(self)?;
            Ok(QualifiedName {
                keyspace: Some(first),
                name,
            })
        } else {
            Ok(QualifiedName {
                keyspace: None,
                name: first,
            })
        }
    }

    fn if_not_exists(&mut self) -> PResult<bool> {
        if self.is_kw(0, "if") {
            self.bump();
            self.expect_kw("not", "K_NOT")?;
            self.expect_kw("exists", "K_EXISTS")?;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    fn if_exists(&mut self) -> PResult<bool> {
        if self.is_kw(0, "if") {
            self.bump();
            self.expect_kw("exists", "K_EXISTS")?;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    // ---- entry points ----

    /// `query: cqlStatement (';')* EOF`
    pub(crate) fn parse_query(&mut self) -> Result<Statement, CqlError> {
        let r = self.statement().and_then(|s| {
            while self.accept(Tok::Semi) {}
            if self.at(0, Tok::Eof) {
                Ok(s)
            } else {
                Err(self.err(ErrKind::Mismatched("EOF")))
            }
        });
        r.map_err(|e| self.format_error(e))
    }

    pub(crate) fn parse_type_only(&mut self) -> Result<TypeExpr, CqlError> {
        let r = self.type_expr().and_then(|t| {
            if self.at(0, Tok::Eof) {
                Ok(t)
            } else {
                Err(self.err(ErrKind::Mismatched("EOF")))
            }
        });
        r.map_err(|e| self.format_error(e))
    }

    fn statement(&mut self) -> PResult<Statement> {
        if self.kind(0) != Tok::Ident {
            return Err(self.no_viable());
        }
        let w = self.text(0);
        let is = |k: &str| w.eq_ignore_ascii_case(k);
        if is("select") {
            self.bump();
            self.select().map(Statement::Select)
        } else if is("insert") {
            self.bump();
            self.insert().map(Statement::Insert)
        } else if is("update") {
            self.bump();
            self.update().map(Statement::Update)
        } else if is("delete") {
            self.bump();
            self.delete().map(Statement::Delete)
        } else if is("begin") {
            self.bump();
            self.batch().map(Statement::Batch)
        } else if is("use") {
            self.bump();
            self.keyspace_name().map(Statement::Use)
        } else if is("truncate") {
            self.bump();
            if self.is_kw(0, "table") || self.is_kw(0, "columnfamily") {
                self.bump();
            }
            self.qualified_name("table").map(Statement::Truncate)
        } else if is("create") {
            self.bump();
            self.create()
        } else if is("alter") {
            self.bump();
            self.alter()
        } else if is("drop") {
            self.bump();
            self.drop()
        } else if is("grant") {
            self.bump();
            self.grant_or_revoke(true)
        } else if is("revoke") {
            self.bump();
            self.grant_or_revoke(false)
        } else if is("list") {
            self.bump();
            self.list()
        } else if is("describe") || is("desc") {
            self.bump();
            self.describe().map(Statement::Describe)
        } else {
            Err(self.no_viable())
        }
    }

    // ---- terms ----

    fn bind(&mut self, name: Option<String>) -> BindMarker {
        let index = self.binds.len();
        self.binds.push(name.clone());
        BindMarker { index, name }
    }

    /// `?` or `:name`
    fn marker(&mut self) -> PResult<Option<BindMarker>> {
        if self.accept(Tok::QMark) {
            return Ok(Some(self.bind(None)));
        }
        if self.at(0, Tok::Colon) {
            self.bump();
            let name = self.ident()?;
            return Ok(Some(self.bind(Some(name))));
        }
        Ok(None)
    }

    /// Runs `f` one nesting level deeper, refusing past [`MAX_DEPTH`].
    fn nested<T>(&mut self, f: impl FnOnce(&mut Self) -> PResult<T>) -> PResult<T> {
        if self.depth >= MAX_DEPTH {
            return Err(self.custom(format!(
                "statement nested too deeply (more than {MAX_DEPTH} levels)"
            )));
        }
        self.depth += 1;
        let r = f(self);
        self.depth -= 1;
        r
    }

    /// `term` without arithmetic (which Shoal does not support): `['-'] simpleTerm`.
    pub(crate) fn term(&mut self) -> PResult<Term> {
        self.nested(Self::term_inner)
    }

    fn term_inner(&mut self) -> PResult<Term> {
        if self.at(0, Tok::Minus) {
            self.bump();
            let t = self.simple_term()?;
            return Ok(negate(t));
        }
        self.simple_term()
    }

    fn constant(&mut self) -> Option<Literal> {
        let t = self.tok(0);
        let text = self.text_of(t);
        let lit = match t.kind {
            Tok::Str => Literal::String(lexer::unquote(text)),
            Tok::Integer => Literal::Integer(text.to_owned()),
            Tok::Float => Literal::Float(text.to_owned()),
            Tok::Hex => Literal::Blob(text[2..].to_owned()),
            Tok::Uuid => Literal::Uuid(text.to_owned()),
            Tok::Duration => Literal::Duration(text.to_owned()),
            Tok::NegNaN => Literal::NaN,
            Tok::NegInfinity => Literal::NegInfinity,
            Tok::Ident => {
                if text.eq_ignore_ascii_case("true") {
                    Literal::Boolean(true)
                } else if text.eq_ignore_ascii_case("false") {
                    Literal::Boolean(false)
                } else if text.eq_ignore_ascii_case("nan") {
                    Literal::NaN
                } else if text.eq_ignore_ascii_case("infinity") {
                    Literal::Infinity
                } else {
                    return None;
                }
            }
            _ => return None,
        };
        self.bump();
        Some(lit)
    }

    fn simple_term(&mut self) -> PResult<Term> {
        if let Some(l) = self.constant() {
            return Ok(Term::Literal(l));
        }
        if let Some(m) = self.marker()? {
            return Ok(Term::Bind(m));
        }
        match self.kind(0) {
            Tok::Ident | Tok::QuotedIdent => {
                if self.is_kw(0, "null") {
                    self.bump();
                    return Ok(Term::Literal(Literal::Null));
                }
                if self.function_call_ahead(0) {
                    let name = self.function_name()?;
                    let args = self.function_args()?;
                    return Ok(Term::FunctionCall { name, args });
                }
                Err(self.no_viable())
            }
            Tok::LBracket => {
                self.bump();
                let mut items = Vec::new();
                if !self.accept(Tok::RBracket) {
                    loop {
                        items.push(self.term()?);
                        if !self.accept(Tok::Comma) {
                            break;
                        }
                    }
                    self.expect(Tok::RBracket)?;
                }
                Ok(Term::List(items))
            }
            Tok::LBrace => self.brace_literal(),
            Tok::LParen => {
                // `(type) term` or a tuple literal.
                let m = self.mark();
                self.bump();
                if let Ok(ty) = self.type_expr()
                    && self.accept(Tok::RParen)
                    && self.starts_simple_term()
                {
                    let term = self.simple_term()?;
                    return Ok(Term::Cast {
                        ty,
                        term: Box::new(term),
                    });
                }
                self.reset(m);
                self.bump();
                let mut items = vec![self.term()?];
                while self.accept(Tok::Comma) {
                    items.push(self.term()?);
                }
                self.expect(Tok::RParen)?;
                Ok(Term::Tuple(items))
            }
            _ => Err(self.no_viable()),
        }
    }

    fn starts_simple_term(&self) -> bool {
        match self.kind(0) {
            Tok::Str
            | Tok::Integer
            | Tok::Float
            | Tok::Hex
            | Tok::Uuid
            | Tok::Duration
            | Tok::NegNaN
            | Tok::NegInfinity
            | Tok::QMark
            | Tok::Colon
            | Tok::LBracket
            | Tok::LBrace
            | Tok::LParen => true,
            Tok::Ident | Tok::QuotedIdent => {
                ["true", "false", "nan", "infinity", "null"]
                    .iter()
                    .any(|k| self.is_kw(0, k))
                    || self.function_call_ahead(0)
            }
            _ => false,
        }
    }

    /// `{}` / `{k: v, ...}` / `{a, b}` / `{field: v, ...}`.
    fn brace_literal(&mut self) -> PResult<Term> {
        self.expect(Tok::LBrace)?;
        if self.accept(Tok::RBrace) {
            return Ok(Term::Map(Vec::new()));
        }
        // A bare identifier key can only be a UDT field name.
        if self.is_ident(0) && self.at(1, Tok::Colon) {
            let mut fields = Vec::new();
            loop {
                let f = self.ident()?;
                self.expect(Tok::Colon)?;
                let v = self.term()?;
                fields.push((f, v));
                if !self.accept(Tok::Comma) {
                    break;
                }
            }
            self.expect(Tok::RBrace)?;
            return Ok(Term::Udt(fields));
        }
        let first = self.term()?;
        if self.accept(Tok::Colon) {
            let v = self.term()?;
            let mut entries = vec![(first, v)];
            while self.accept(Tok::Comma) {
                let k = self.term()?;
                self.expect(Tok::Colon)?;
                let v = self.term()?;
                entries.push((k, v));
            }
            self.expect(Tok::RBrace)?;
            Ok(Term::Map(entries))
        } else {
            let mut items = vec![first];
            while self.accept(Tok::Comma) {
                items.push(self.term()?);
            }
            self.expect(Tok::RBrace)?;
            Ok(Term::Set(items))
        }
    }

    fn function_args(&mut self) -> PResult<Vec<Term>> {
        self.expect(Tok::LParen)?;
        let mut args = Vec::new();
        if self.accept(Tok::RParen) {
            return Ok(args);
        }
        loop {
            args.push(self.term()?);
            if !self.accept(Tok::Comma) {
                break;
            }
        }
        self.expect(Tok::RParen)?;
        Ok(args)
    }

    /// `intValue`: an integer literal or a marker (LIMIT, TTL, TIMESTAMP).
    fn int_value(&mut self) -> PResult<Term> {
        if self.at(0, Tok::Integer) {
            let t = self.bump();
            return Ok(Term::Literal(Literal::Integer(self.text_of(t).to_owned())));
        }
        if let Some(m) = self.marker()? {
            return Ok(Term::Bind(m));
        }
        Err(self.no_viable())
    }

    // ---- types ----

    pub(crate) fn type_expr(&mut self) -> PResult<TypeExpr> {
        self.nested(Self::type_expr_inner)
    }

    fn type_expr_inner(&mut self) -> PResult<TypeExpr> {
        let t = self.tok(0);
        match t.kind {
            Tok::Str => {
                self.bump();
                Ok(TypeExpr::Custom(lexer::unquote(self.text_of(t))))
            }
            Tok::Ident => {
                let w = self.text_of(t);
                let lower = w.to_ascii_lowercase();
                if self.at(1, Tok::Lt) {
                    match lower.as_str() {
                        "frozen" => {
                            self.bump();
                            self.bump();
                            let inner = self.type_expr()?;
                            self.expect(Tok::Gt)?;
                            return Ok(TypeExpr::Frozen(Box::new(inner)));
                        }
                        "list" | "set" => {
                            self.bump();
                            self.bump();
                            let inner = Box::new(self.type_expr()?);
                            self.expect(Tok::Gt)?;
                            return Ok(if lower == "list" {
                                TypeExpr::List(inner)
                            } else {
                                TypeExpr::Set(inner)
                            });
                        }
                        "map" => {
                            self.bump();
                            self.bump();
                            let k = self.type_expr()?;
                            self.expect(Tok::Comma)?;
                            let v = self.type_expr()?;
                            self.expect(Tok::Gt)?;
                            return Ok(TypeExpr::Map(Box::new(k), Box::new(v)));
                        }
                        "tuple" => {
                            self.bump();
                            self.bump();
                            let mut items = vec![self.type_expr()?];
                            while self.accept(Tok::Comma) {
                                items.push(self.type_expr()?);
                            }
                            self.expect(Tok::Gt)?;
                            return Ok(TypeExpr::Tuple(items));
                        }
                        "vector" => {
                            self.bump();
                            self.bump();
                            let inner = self.type_expr()?;
                            self.expect(Tok::Comma)?;
                            let d = self.expect(Tok::Integer)?;
                            let dim = self
                                .text_of(d)
                                .parse::<u32>()
                                .map_err(|_| self.custom("Invalid vector dimension"))?;
                            self.expect(Tok::Gt)?;
                            return Ok(TypeExpr::Vector(Box::new(inner), dim));
                        }
                        _ => {}
                    }
                }
                if is_native_type(&lower) {
                    self.bump();
                    return Ok(TypeExpr::Native(lower));
                }
                self.user_type_name().map(TypeExpr::UserDefined)
            }
            Tok::QuotedIdent => self.user_type_name().map(TypeExpr::UserDefined),
            _ => Err(self.no_viable()),
        }
    }

    /// `userTypeName`: `[ks.]name`. Callers try native type names first, so `int` never gets here.
    fn user_type_name(&mut self) -> PResult<QualifiedName> {
        let q = self.qualified_name("type")?;
        Ok(q)
    }

    // ---- SELECT ----

    /// Whether the word at 0 (JSON, DISTINCT) acts as a modifier rather than a column name.
    fn modifier_ahead(&self) -> bool {
        !matches!(
            self.kind(1),
            Tok::Comma | Tok::Dot | Tok::LBracket | Tok::LParen | Tok::Eof
        ) && !self.is_kw(1, "from")
            && !self.is_kw(1, "as")
    }

    fn select(&mut self) -> PResult<SelectStatement> {
        let json = self.is_kw(0, "json") && self.modifier_ahead() && {
            self.bump();
            true
        };
        let distinct = self.is_kw(0, "distinct") && self.modifier_ahead() && {
            self.bump();
            true
        };
        let mut selection = Vec::new();
        if !self.accept(Tok::Star) {
            loop {
                let selector = self.selector()?;
                let alias = if self.is_kw(0, "as") {
                    self.bump();
                    Some(self.ident()?)
                } else {
                    None
                };
                selection.push(SelectItem { selector, alias });
                if !self.accept(Tok::Comma) {
                    break;
                }
            }
        }
        self.expect_kw("from", "K_FROM")?;
        let table = self.qualified_name("table")?;
        let where_clause = if self.accept_kw("where") {
            self.where_clause()?
        } else {
            Vec::new()
        };
        let mut group_by = Vec::new();
        if self.accept_kw("group") {
            self.expect_kw("by", "K_BY")?;
            loop {
                group_by.push(self.ident()?);
                if !self.accept(Tok::Comma) {
                    break;
                }
            }
        }
        let mut order_by = Vec::new();
        if self.accept_kw("order") {
            self.expect_kw("by", "K_BY")?;
            loop {
                let c = self.ident()?;
                let o = if self.accept_kw("desc") {
                    Order::Desc
                } else {
                    self.accept_kw("asc");
                    Order::Asc
                };
                order_by.push((c, o));
                if !self.accept(Tok::Comma) {
                    break;
                }
            }
        }
        let mut per_partition_limit = None;
        if self.is_kw(0, "per") && self.is_kw(1, "partition") {
            self.bump();
            self.bump();
            self.expect_kw("limit", "K_LIMIT")?;
            per_partition_limit = Some(self.int_value()?);
        }
        let limit = if self.accept_kw("limit") {
            Some(self.int_value()?)
        } else {
            None
        };
        let allow_filtering = if self.accept_kw("allow") {
            self.expect_kw("filtering", "K_FILTERING")?;
            true
        } else {
            false
        };
        Ok(SelectStatement {
            json,
            distinct,
            selection,
            table,
            where_clause,
            group_by,
            order_by,
            per_partition_limit,
            limit,
            allow_filtering,
        })
    }

    fn selector(&mut self) -> PResult<Selector> {
        self.nested(Self::selector_inner)
    }

    fn selector_inner(&mut self) -> PResult<Selector> {
        let mut s = self.selector_base()?;
        while self.at(0, Tok::Dot) {
            self.bump();
            let field = self.ident()?;
            s = Selector::Field {
                selector: Box::new(s),
                field,
            };
        }
        Ok(s)
    }

    fn selector_base(&mut self) -> PResult<Selector> {
        let k = self.kind(0);
        if matches!(k, Tok::Ident | Tok::QuotedIdent) {
            if k == Tok::Ident && self.at(1, Tok::LParen) {
                if self.is_kw(0, "count")
                    && (self.at(2, Tok::Star) || (self.at(2, Tok::Integer) && self.text(2) == "1"))
                    && self.at(3, Tok::RParen)
                {
                    self.pos += 4;
                    return Ok(Selector::CountStar);
                }
                if self.is_kw(0, "writetime") || self.is_kw(0, "ttl") {
                    let wt = self.is_kw(0, "writetime");
                    self.bump();
                    self.bump();
                    let c = self.ident()?;
                    self.expect(Tok::RParen)?;
                    return Ok(if wt {
                        Selector::WriteTime(c)
                    } else {
                        Selector::Ttl(c)
                    });
                }
                if self.is_kw(0, "cast") {
                    self.bump();
                    self.bump();
                    let inner = self.selector()?;
                    self.expect_kw("as", "K_AS")?;
                    let ty = self.type_expr()?;
                    self.expect(Tok::RParen)?;
                    return Ok(Selector::Cast {
                        selector: Box::new(inner),
                        ty,
                    });
                }
            }
            if self.function_call_ahead(0) {
                let name = self.function_name()?;
                self.expect(Tok::LParen)?;
                let mut args = Vec::new();
                if !self.accept(Tok::RParen) {
                    loop {
                        args.push(self.selector()?);
                        if !self.accept(Tok::Comma) {
                            break;
                        }
                    }
                    self.expect(Tok::RParen)?;
                }
                return Ok(Selector::Function { name, args });
            }
            if self.starts_simple_term() {
                return self.term().map(Selector::Term);
            }
            return self.ident().map(Selector::Column);
        }
        if self.starts_simple_term() || self.at(0, Tok::Minus) {
            return self.term().map(Selector::Term);
        }
        Err(self.no_viable())
    }

    // ---- WHERE ----

    fn where_clause(&mut self) -> PResult<Vec<Relation>> {
        let mut rels = Vec::new();
        loop {
            self.relation(&mut rels)?;
            if !self.accept_kw("and") {
                break;
            }
        }
        Ok(rels)
    }

    fn relation_op(&mut self) -> Option<Operator> {
        let op = match self.kind(0) {
            Tok::Eq => Operator::Eq,
            Tok::Ne => Operator::Ne,
            Tok::Lt => Operator::Lt,
            Tok::Le => Operator::Le,
            Tok::Gt => Operator::Gt,
            Tok::Ge => Operator::Ge,
            _ => return None,
        };
        self.bump();
        Some(op)
    }

    fn tuple_of_identifiers(&mut self) -> PResult<Vec<String>> {
        self.expect(Tok::LParen)?;
        let mut ids = vec![self.ident()?];
        while self.accept(Tok::Comma) {
            ids.push(self.ident()?);
        }
        self.expect(Tok::RParen)?;
        Ok(ids)
    }

    /// `(a, b, ...)` of terms, possibly empty, or an IN marker.
    fn in_values(&mut self) -> PResult<RelationValue> {
        if let Some(m) = self.marker()? {
            return Ok(RelationValue::InMarker(m));
        }
        self.expect(Tok::LParen)?;
        let mut items = Vec::new();
        if !self.accept(Tok::RParen) {
            loop {
                items.push(self.term()?);
                if !self.accept(Tok::Comma) {
                    break;
                }
            }
            self.expect(Tok::RParen)?;
        }
        Ok(RelationValue::InList(items))
    }

    fn relation(&mut self, out: &mut Vec<Relation>) -> PResult<()> {
        if self.is_kw(0, "token") && self.at(1, Tok::LParen) {
            self.bump();
            let columns = self.tuple_of_identifiers()?;
            let op = self.relation_op().ok_or_else(|| self.no_viable())?;
            let value = self.term()?;
            out.push(Relation::Token { columns, op, value });
            return Ok(());
        }
        if self.at(0, Tok::LParen) {
            let m = self.mark();
            if let Ok(columns) = self.tuple_of_identifiers() {
                if self.accept_kw("in") {
                    let value = self.in_values()?;
                    out.push(Relation::MultiColumn {
                        columns,
                        op: Operator::In,
                        value,
                    });
                    return Ok(());
                }
                if let Some(op) = self.relation_op() {
                    let value = RelationValue::Single(self.term()?);
                    out.push(Relation::MultiColumn { columns, op, value });
                    return Ok(());
                }
            }
            // `'(' relation ')'`
            self.reset(m);
            self.bump();
            self.relation(out)?;
            self.expect(Tok::RParen)?;
            return Ok(());
        }
        let column = self.ident()?;
        if self.accept(Tok::LBracket) {
            let key = self.term()?;
            self.expect(Tok::RBracket)?;
            let op = self.relation_op().ok_or_else(|| self.no_viable())?;
            let value = self.term()?;
            out.push(Relation::MapEntry {
                column,
                key,
                op,
                value,
            });
            return Ok(());
        }
        let (op, value) = if let Some(op) = self.relation_op() {
            (op, RelationValue::Single(self.term()?))
        } else if self.accept_kw("in") {
            (Operator::In, self.in_values()?)
        } else if self.accept_kw("contains") {
            let op = if self.accept_kw("key") {
                Operator::ContainsKey
            } else {
                Operator::Contains
            };
            (op, RelationValue::Single(self.term()?))
        } else if self.accept_kw("like") {
            (Operator::Like, RelationValue::Single(self.term()?))
        } else if self.accept_kw("is") {
            self.expect_kw("not", "K_NOT")?;
            self.expect_kw("null", "K_NULL")?;
            (
                Operator::IsNot,
                RelationValue::Single(Term::Literal(Literal::Null)),
            )
        } else {
            return Err(self.no_viable());
        };
        out.push(Relation::Column { column, op, value });
        Ok(())
    }

    // ---- INSERT / UPDATE / DELETE / BATCH ----

    /// `USING (TTL x | TIMESTAMP y) (AND ...)*`, after `USING` was consumed.
    fn using_objectives(&mut self, using: &mut UsingClause, ttl_allowed: bool) -> PResult<()> {
        loop {
            if self.accept_kw("timestamp") {
                using.timestamp = Some(self.int_value()?);
            } else if ttl_allowed && self.accept_kw("ttl") {
                using.ttl = Some(self.int_value()?);
            } else if ttl_allowed {
                return Err(self.no_viable());
            } else {
                return Err(self.err(ErrKind::Mismatched("K_TIMESTAMP")));
            }
            if !self.accept_kw("and") {
                return Ok(());
            }
        }
    }

    fn insert(&mut self) -> PResult<InsertStatement> {
        self.expect_kw("into", "K_INTO")?;
        let table = self.qualified_name("table")?;
        let values = if self.accept_kw("json") {
            let json = if let Some(m) = self.marker()? {
                Term::Bind(m)
            } else {
                let t = self.expect(Tok::Str)?;
                Term::Literal(Literal::String(lexer::unquote(self.text_of(t))))
            };
            let mut default_unset = false;
            if self.accept_kw("default") {
                if self.accept_kw("unset") {
                    default_unset = true;
                } else if !self.accept_kw("null") {
                    return Err(self.no_viable());
                }
            }
            InsertValues::Json {
                json,
                default_unset,
            }
        } else {
            let columns = self.tuple_of_identifiers()?;
            self.expect_kw("values", "K_VALUES")?;
            self.expect(Tok::LParen)?;
            let mut values = vec![self.term()?];
            while self.accept(Tok::Comma) {
                values.push(self.term()?);
            }
            self.expect(Tok::RParen)?;
            InsertValues::Values { columns, values }
        };
        let if_not_exists = self.if_not_exists()?;
        let mut using = UsingClause::default();
        if self.accept_kw("using") {
            self.using_objectives(&mut using, true)?;
        }
        Ok(InsertStatement {
            table,
            values,
            if_not_exists,
            using,
        })
    }

    /// Whether token 0 is a plain column reference (not the start of a function call).
    fn column_ref_ahead(&self) -> bool {
        self.is_ident(0) && !self.function_call_ahead(0)
    }

    fn assignment(&mut self) -> PResult<Assignment> {
        let col = self.ident()?;
        match self.kind(0) {
            Tok::PlusEq | Tok::MinusEq => {
                let add = self.bump().kind == Tok::PlusEq;
                let t = self.term()?;
                Ok(Assignment {
                    target: ColumnTarget::Column(col),
                    value: if add {
                        AssignValue::Add(t)
                    } else {
                        AssignValue::Subtract(t)
                    },
                })
            }
            Tok::LBracket => {
                self.bump();
                let k = self.term()?;
                self.expect(Tok::RBracket)?;
                self.expect(Tok::Eq)?;
                let v = self.term()?;
                Ok(Assignment {
                    target: ColumnTarget::Element(col, k),
                    value: AssignValue::Set(v),
                })
            }
            Tok::Dot => {
                self.bump();
                let f = self.ident()?;
                self.expect(Tok::Eq)?;
                let v = self.term()?;
                Ok(Assignment {
                    target: ColumnTarget::Field(col, f),
                    value: AssignValue::Set(v),
                })
            }
            Tok::Eq => {
                self.bump();
                let target = ColumnTarget::Column(col.clone());
                if self.column_ref_ahead() {
                    let other = self.ident()?;
                    let value = match self.kind(0) {
                        Tok::Plus | Tok::Minus => {
                            let sig = self.bump().kind;
                            if other != col {
                                let s = if sig == Tok::Plus { "+" } else { "-" };
                                return Err(self.custom(format!(
                                    "Only expressions of the form X = X {s}<value> are supported."
                                )));
                            }
                            let t = self.term()?;
                            if sig == Tok::Plus {
                                AssignValue::Add(t)
                            } else {
                                AssignValue::Subtract(t)
                            }
                        }
                        // `X = X -3` lexes the sign into the literal.
                        Tok::Integer | Tok::Float if self.text(0).starts_with('-') => {
                            if other != col {
                                return Err(self.custom(
                                    "Only expressions of the form X = X -<value> are supported.",
                                ));
                            }
                            AssignValue::Add(self.term()?)
                        }
                        _ => return Err(self.no_viable()),
                    };
                    return Ok(Assignment { target, value });
                }
                let t = self.term()?;
                if self.accept(Tok::Plus) {
                    let other = self.ident()?;
                    if other != col {
                        return Err(self.custom(
                            "Only expressions of the form X = <value> + X are supported.",
                        ));
                    }
                    return Ok(Assignment {
                        target,
                        value: AssignValue::Prepend(t),
                    });
                }
                Ok(Assignment {
                    target,
                    value: AssignValue::Set(t),
                })
            }
            _ => Err(self.no_viable()),
        }
    }

    fn conditions(&mut self) -> PResult<Option<Conditions>> {
        if !self.accept_kw("if") {
            return Ok(None);
        }
        if self.is_kw(0, "exists")
            && !matches!(self.kind(1), Tok::Dot | Tok::LBracket)
            && self.relation_op_at(1).is_none()
            && !self.is_kw(1, "in")
            && !self.is_kw(1, "contains")
        {
            self.bump();
            return Ok(Some(Conditions::IfExists));
        }
        let mut conds = Vec::new();
        loop {
            let col = self.ident()?;
            let target = if self.accept(Tok::LBracket) {
                let k = self.term()?;
                self.expect(Tok::RBracket)?;
                ColumnTarget::Element(col, k)
            } else if self.accept(Tok::Dot) {
                ColumnTarget::Field(col, self.ident()?)
            } else {
                ColumnTarget::Column(col)
            };
            let (op, value) = if let Some(op) = self.relation_op() {
                (op, RelationValue::Single(self.term()?))
            } else if self.accept_kw("in") {
                (Operator::In, self.in_values()?)
            } else if matches!(target, ColumnTarget::Column(_)) && self.accept_kw("contains") {
                let op = if self.accept_kw("key") {
                    Operator::ContainsKey
                } else {
                    Operator::Contains
                };
                (op, RelationValue::Single(self.term()?))
            } else {
                return Err(self.no_viable());
            };
            conds.push(Condition { target, op, value });
            if !self.accept_kw("and") {
                break;
            }
        }
        Ok(Some(Conditions::If(conds)))
    }

    fn relation_op_at(&self, k: usize) -> Option<Operator> {
        match self.kind(k) {
            Tok::Eq => Some(Operator::Eq),
            Tok::Ne => Some(Operator::Ne),
            Tok::Lt => Some(Operator::Lt),
            Tok::Le => Some(Operator::Le),
            Tok::Gt => Some(Operator::Gt),
            Tok::Ge => Some(Operator::Ge),
            _ => None,
        }
    }

    fn update(&mut self) -> PResult<UpdateStatement> {
        let table = self.qualified_name("table")?;
        let mut using = UsingClause::default();
        if self.accept_kw("using") {
            self.using_objectives(&mut using, true)?;
        }
        self.expect_kw("set", "K_SET")?;
        let mut assignments = vec![self.assignment()?];
        while self.accept(Tok::Comma) {
            assignments.push(self.assignment()?);
        }
        self.expect_kw("where", "K_WHERE")?;
        let where_clause = self.where_clause()?;
        let conditions = self.conditions()?;
        Ok(UpdateStatement {
            table,
            using,
            assignments,
            where_clause,
            conditions,
        })
    }

    fn delete(&mut self) -> PResult<DeleteStatement> {
        let mut targets = Vec::new();
        if !self.is_kw(0, "from") {
            loop {
                let col = self.ident()?;
                let t = if self.accept(Tok::LBracket) {
                    let k = self.term()?;
                    self.expect(Tok::RBracket)?;
                    ColumnTarget::Element(col, k)
                } else if self.accept(Tok::Dot) {
                    ColumnTarget::Field(col, self.ident()?)
                } else {
                    ColumnTarget::Column(col)
                };
                targets.push(t);
                if !self.accept(Tok::Comma) {
                    break;
                }
            }
        }
        self.expect_kw("from", "K_FROM")?;
        let table = self.qualified_name("table")?;
        let mut using = UsingClause::default();
        if self.accept_kw("using") {
            self.using_objectives(&mut using, false)?;
        }
        self.expect_kw("where", "K_WHERE")?;
        let where_clause = self.where_clause()?;
        let conditions = self.conditions()?;
        Ok(DeleteStatement {
            targets,
            table,
            using,
            where_clause,
            conditions,
        })
    }

    fn batch(&mut self) -> PResult<BatchStatement> {
        let kind = if self.accept_kw("unlogged") {
            BatchKind::Unlogged
        } else if self.accept_kw("counter") {
            BatchKind::Counter
        } else {
            BatchKind::Logged
        };
        self.expect_kw("batch", "K_BATCH")?;
        let mut using = UsingClause::default();
        if self.accept_kw("using") {
            self.using_objectives(&mut using, true)?;
        }
        let mut statements = Vec::new();
        loop {
            if self.accept_kw("apply") {
                self.expect_kw("batch", "K_BATCH")?;
                break;
            }
            let s = if self.accept_kw("insert") {
                Statement::Insert(self.insert()?)
            } else if self.accept_kw("update") {
                Statement::Update(self.update()?)
            } else if self.accept_kw("delete") {
                Statement::Delete(self.delete()?)
            } else {
                return Err(self.err(ErrKind::Mismatched("K_APPLY")));
            };
            statements.push(s);
            self.accept(Tok::Semi);
        }
        Ok(BatchStatement {
            kind,
            using,
            statements,
        })
    }

    // ---- properties ----

    fn properties(&mut self) -> PResult<Vec<Property>> {
        let mut props = vec![self.property()?];
        while self.accept_kw("and") {
            props.push(self.property()?);
        }
        Ok(props)
    }

    fn property(&mut self) -> PResult<Property> {
        let name = self.ident()?;
        self.expect(Tok::Eq)?;
        let value = self.property_value()?;
        Ok(Property { name, value })
    }

    fn property_value(&mut self) -> PResult<PropertyValue> {
        if self.at(0, Tok::LBrace) {
            let start = self.pos;
            self.bump();
            let mut entries = Vec::new();
            if !self.accept(Tok::RBrace) {
                loop {
                    let k = self.term()?;
                    self.expect(Tok::Colon)?;
                    let v = self.term()?;
                    match (k, v) {
                        (Term::Literal(k), Term::Literal(v)) => entries.push((k, v)),
                        (k, v) => {
                            let mut e = self
                                .custom(format!("Invalid property value: {v} for property: {k}"));
                            e.tok = start;
                            return Err(e);
                        }
                    }
                    if !self.accept(Tok::Comma) {
                        break;
                    }
                }
                self.expect(Tok::RBrace)?;
            }
            return Ok(PropertyValue::Map(entries));
        }
        if let Some(l) = self.constant() {
            return Ok(PropertyValue::Constant(l));
        }
        let t = self.tok(0);
        if t.kind == Tok::Ident && !is_reserved(self.text_of(t)) {
            self.bump();
            return Ok(PropertyValue::Identifier(self.text_of(t).to_owned()));
        }
        Err(self.no_viable())
    }

    // ---- DDL ----

    fn is_table_kw(&self) -> bool {
        self.is_kw(0, "table") || self.is_kw(0, "columnfamily")
    }

    fn is_keyspace_kw(&self) -> bool {
        self.is_kw(0, "keyspace") || self.is_kw(0, "schema")
    }

    fn create(&mut self) -> PResult<Statement> {
        let mut or_replace = false;
        if self.accept_kw("or") {
            self.expect_kw("replace", "K_REPLACE")?;
            or_replace = true;
        }
        if self.accept_kw("function") {
            let if_not_exists = self.if_not_exists()?;
            let name = self.function_name()?;
            self.skip_rest();
            return Ok(Statement::CreateFunction {
                name,
                if_not_exists,
                or_replace,
            });
        }
        if self.accept_kw("aggregate") {
            let if_not_exists = self.if_not_exists()?;
            let name = self.function_name()?;
            self.skip_rest();
            return Ok(Statement::CreateAggregate {
                name,
                if_not_exists,
                or_replace,
            });
        }
        if or_replace {
            return Err(self.no_viable());
        }
        if self.is_keyspace_kw() {
            self.bump();
            let if_not_exists = self.if_not_exists()?;
            let name = self.keyspace_name()?;
            self.expect_kw("with", "K_WITH")?;
            let properties = self.properties()?;
            return Ok(Statement::CreateKeyspace(CreateKeyspaceStatement {
                name,
                if_not_exists,
                properties,
            }));
        }
        if self.is_table_kw() {
            self.bump();
            return self.create_table().map(Statement::CreateTable);
        }
        if self.accept_kw("type") {
            let if_not_exists = self.if_not_exists()?;
            let name = self.user_type_name()?;
            self.expect(Tok::LParen)?;
            let mut fields = Vec::new();
            loop {
                if self.at(0, Tok::RParen) && !fields.is_empty() {
                    break;
                }
                let f = self.ident()?;
                let ty = self.type_expr()?;
                fields.push((f, ty));
                if !self.accept(Tok::Comma) {
                    break;
                }
            }
            self.expect(Tok::RParen)?;
            return Ok(Statement::CreateType {
                name,
                if_not_exists,
                fields,
            });
        }
        if self.is_kw(0, "custom") || self.is_kw(0, "index") {
            let custom = self.accept_kw("custom");
            self.expect_kw("index", "K_INDEX")?;
            return self.create_index(custom).map(Statement::CreateIndex);
        }
        if self.accept_kw("materialized") {
            self.expect_kw("view", "K_VIEW")?;
            let if_not_exists = self.if_not_exists()?;
            let name = self.qualified_name("view")?;
            self.expect_kw("as", "K_AS")?;
            self.skip_rest();
            return Ok(Statement::CreateMaterializedView {
                name,
                if_not_exists,
            });
        }
        if self.accept_kw("trigger") {
            self.if_not_exists()?;
            let name = self.ident()?;
            self.expect_kw("on", "K_ON")?;
            let table = self.qualified_name("table")?;
            self.expect_kw("using", "K_USING")?;
            self.expect(Tok::Str)?;
            return Ok(Statement::CreateTrigger { name, table });
        }
        if self.accept_kw("role") {
            let if_not_exists = self.if_not_exists()?;
            let name = self.role_name()?;
            let options = if self.accept_kw("with") {
                self.role_options()?
            } else {
                RoleOptions::default()
            };
            return Ok(Statement::CreateRole {
                name,
                if_not_exists,
                options,
            });
        }
        if self.accept_kw("user") {
            let if_not_exists = self.if_not_exists()?;
            let name = self.user_name()?;
            let (password, superuser) = self.user_options()?;
            return Ok(Statement::CreateUser {
                name,
                if_not_exists,
                password,
                superuser,
            });
        }
        Err(self.no_viable())
    }

    /// Skips the remainder of a statement whose details Shoal does not keep (function
    /// bodies, view definitions): strings and `$$` bodies are single tokens already.
    fn skip_rest(&mut self) {
        while !self.at(0, Tok::Eof) {
            self.bump();
        }
    }

    fn column_definition(&mut self) -> PResult<ColumnDefinition> {
        let name = self.ident()?;
        let ty = self.type_expr()?;
        let is_static = self.accept_kw("static");
        Ok(ColumnDefinition {
            name,
            ty,
            is_static,
            primary_key: false,
        })
    }

    fn create_table(&mut self) -> PResult<CreateTableStatement> {
        let if_not_exists = self.if_not_exists()?;
        let name = self.qualified_name("table")?;
        self.expect(Tok::LParen)?;
        let mut columns = Vec::new();
        let mut primary_key = None;
        loop {
            if self.at(0, Tok::RParen) && (!columns.is_empty() || primary_key.is_some()) {
                break;
            }
            if self.accept_kw("primary") {
                self.expect_kw("key", "K_KEY")?;
                self.expect(Tok::LParen)?;
                let partition = if self.at(0, Tok::LParen) {
                    self.tuple_of_identifiers()?
                } else {
                    vec![self.ident()?]
                };
                let mut clustering = Vec::new();
                while self.accept(Tok::Comma) {
                    clustering.push(self.ident()?);
                }
                self.expect(Tok::RParen)?;
                primary_key = Some((partition, clustering));
            } else {
                let mut def = self.column_definition()?;
                if self.accept_kw("primary") {
                    self.expect_kw("key", "K_KEY")?;
                    def.primary_key = true;
                }
                columns.push(def);
            }
            if !self.accept(Tok::Comma) {
                break;
            }
        }
        self.expect(Tok::RParen)?;
        let mut stmt = CreateTableStatement {
            name,
            if_not_exists,
            columns,
            primary_key,
            clustering_order: Vec::new(),
            compact_storage: false,
            properties: Vec::new(),
        };
        if self.accept_kw("with") {
            loop {
                if self.is_kw(0, "compact") && self.is_kw(1, "storage") {
                    self.bump();
                    self.bump();
                    stmt.compact_storage = true;
                } else if self.is_kw(0, "clustering") && self.is_kw(1, "order") {
                    self.bump();
                    self.bump();
                    self.expect_kw("by", "K_BY")?;
                    self.expect(Tok::LParen)?;
                    loop {
                        let c = self.ident()?;
                        let o = if self.accept_kw("asc") {
                            Order::Asc
                        } else if self.accept_kw("desc") {
                            Order::Desc
                        } else {
                            return Err(self.no_viable());
                        };
                        stmt.clustering_order.push((c, o));
                        if !self.accept(Tok::Comma) {
                            break;
                        }
                    }
                    self.expect(Tok::RParen)?;
                } else {
                    stmt.properties.push(self.property()?);
                }
                if !self.accept_kw("and") {
                    break;
                }
            }
        }
        Ok(stmt)
    }

    fn create_index(&mut self, custom: bool) -> PResult<CreateIndexStatement> {
        let if_not_exists = self.if_not_exists()?;
        let name = if self.is_kw(0, "on") {
            None
        } else {
            Some(self.ident()?)
        };
        self.expect_kw("on", "K_ON")?;
        let table = self.qualified_name("table")?;
        self.expect(Tok::LParen)?;
        let mut targets = Vec::new();
        if !self.accept(Tok::RParen) {
            loop {
                let kind = if self.at(1, Tok::LParen) {
                    let k = if self.is_kw(0, "keys") {
                        IndexTargetKind::Keys
                    } else if self.is_kw(0, "values") {
                        IndexTargetKind::Values
                    } else if self.is_kw(0, "entries") {
                        IndexTargetKind::Entries
                    } else if self.is_kw(0, "full") {
                        IndexTargetKind::Full
                    } else {
                        return Err(self.no_viable());
                    };
                    self.bump();
                    self.bump();
                    k
                } else {
                    IndexTargetKind::Simple
                };
                let col = self.ident()?;
                if kind != IndexTargetKind::Simple {
                    self.expect(Tok::RParen)?;
                }
                targets.push((col, kind));
                if !self.accept(Tok::Comma) {
                    break;
                }
            }
            self.expect(Tok::RParen)?;
        }
        let custom_class = if self.accept_kw("using") {
            let t = self.expect(Tok::Str)?;
            Some(lexer::unquote(self.text_of(t)))
        } else {
            None
        };
        let properties = if self.accept_kw("with") {
            self.properties()?
        } else {
            Vec::new()
        };
        if custom && custom_class.is_none() {
            return Err(self.custom("CUSTOM index requires specifying the index class"));
        }
        Ok(CreateIndexStatement {
            name,
            table,
            if_not_exists,
            targets,
            custom_class,
            properties,
        })
    }

    fn alter(&mut self) -> PResult<Statement> {
        if self.is_keyspace_kw() {
            self.bump();
            let if_exists = self.if_exists()?;
            let name = self.keyspace_name()?;
            self.expect_kw("with", "K_WITH")?;
            let properties = self.properties()?;
            return Ok(Statement::AlterKeyspace {
                name,
                if_exists,
                properties,
            });
        }
        if self.is_table_kw() {
            self.bump();
            return self.alter_table().map(Statement::AlterTable);
        }
        if self.accept_kw("type") {
            let if_exists = self.if_exists()?;
            let name = self.user_type_name()?;
            let action = if self.accept_kw("alter") {
                let field = self.ident()?;
                self.expect_kw("type", "K_TYPE")?;
                let ty = self.type_expr()?;
                AlterTypeAction::AlterField { field, ty }
            } else if self.accept_kw("add") {
                let if_not_exists = self.if_not_exists()?;
                let field = self.ident()?;
                let ty = self.type_expr()?;
                AlterTypeAction::Add {
                    field,
                    ty,
                    if_not_exists,
                }
            } else if self.accept_kw("rename") {
                let if_exists = self.if_exists()?;
                AlterTypeAction::Rename {
                    renames: self.renames()?,
                    if_exists,
                }
            } else {
                return Err(self.no_viable());
            };
            return Ok(Statement::AlterType {
                name,
                if_exists,
                action,
            });
        }
        if self.accept_kw("materialized") {
            self.expect_kw("view", "K_VIEW")?;
            self.if_exists()?;
            let name = self.qualified_name("view")?;
            self.expect_kw("with", "K_WITH")?;
            self.properties()?;
            return Ok(Statement::AlterMaterializedView { name });
        }
        if self.accept_kw("role") {
            let if_exists = self.if_exists()?;
            let name = self.role_name()?;
            let options = if self.accept_kw("with") {
                self.role_options()?
            } else {
                RoleOptions::default()
            };
            return Ok(Statement::AlterRole {
                name,
                if_exists,
                options,
            });
        }
        if self.accept_kw("user") {
            let if_exists = self.if_exists()?;
            let name = self.user_name()?;
            let (password, superuser) = self.user_options()?;
            return Ok(Statement::AlterUser {
                name,
                if_exists,
                password,
                superuser,
            });
        }
        Err(self.no_viable())
    }

    fn renames(&mut self) -> PResult<Vec<(String, String)>> {
        let mut out = Vec::new();
        loop {
            let a = self.ident()?;
            self.expect_kw("to", "K_TO")?;
            let b = self.ident()?;
            out.push((a, b));
            if !self.accept_kw("and") {
                return Ok(out);
            }
        }
    }

    fn alter_table(&mut self) -> PResult<AlterTableStatement> {
        let if_exists = self.if_exists()?;
        let name = self.qualified_name("table")?;
        let action = if self.accept_kw("alter") {
            let column = self.ident()?;
            self.expect_kw("type", "K_TYPE")?;
            let ty = self.type_expr()?;
            AlterTableAction::AlterType { column, ty }
        } else if self.accept_kw("add") {
            let if_not_exists = self.if_not_exists()?;
            let mut columns = Vec::new();
            if self.accept(Tok::LParen) {
                loop {
                    columns.push(self.column_definition()?);
                    if !self.accept(Tok::Comma) {
                        break;
                    }
                }
                self.expect(Tok::RParen)?;
            } else {
                columns.push(self.column_definition()?);
            }
            AlterTableAction::Add {
                columns,
                if_not_exists,
            }
        } else if self.accept_kw("drop") {
            if self.is_kw(0, "compact") && self.is_kw(1, "storage") {
                return Err(self.custom(
                    "ALTER TABLE ... DROP COMPACT STORAGE is not supported: Shoal has no COMPACT STORAGE tables",
                ));
            }
            let if_exists = self.if_exists()?;
            let columns = if self.at(0, Tok::LParen) {
                self.tuple_of_identifiers()?
            } else {
                vec![self.ident()?]
            };
            let timestamp = if self.accept_kw("using") {
                self.expect_kw("timestamp", "K_TIMESTAMP")?;
                let t = self.expect(Tok::Integer)?;
                Some(Term::Literal(Literal::Integer(self.text_of(t).to_owned())))
            } else {
                None
            };
            AlterTableAction::Drop {
                columns,
                if_exists,
                timestamp,
            }
        } else if self.accept_kw("rename") {
            let if_exists = self.if_exists()?;
            AlterTableAction::Rename {
                renames: self.renames()?,
                if_exists,
            }
        } else if self.accept_kw("with") {
            AlterTableAction::With(self.properties()?)
        } else {
            return Err(self.no_viable());
        };
        Ok(AlterTableStatement {
            name,
            if_exists,
            action,
        })
    }

    fn drop(&mut self) -> PResult<Statement> {
        if self.is_keyspace_kw() {
            self.bump();
            let if_exists = self.if_exists()?;
            let name = self.keyspace_name()?;
            return Ok(Statement::DropKeyspace { name, if_exists });
        }
        if self.is_table_kw() {
            self.bump();
            let if_exists = self.if_exists()?;
            let name = self.qualified_name("table")?;
            return Ok(Statement::DropTable { name, if_exists });
        }
        if self.accept_kw("type") {
            let if_exists = self.if_exists()?;
            let name = self.user_type_name()?;
            return Ok(Statement::DropType { name, if_exists });
        }
        if self.accept_kw("index") {
            let if_exists = self.if_exists()?;
            let name = self.qualified_name("index")?;
            return Ok(Statement::DropIndex { name, if_exists });
        }
        if self.accept_kw("materialized") {
            self.expect_kw("view", "K_VIEW")?;
            let if_exists = self.if_exists()?;
            let name = self.qualified_name("view")?;
            return Ok(Statement::DropMaterializedView { name, if_exists });
        }
        if self.is_kw(0, "function") || self.is_kw(0, "aggregate") {
            let function = self.bump();
            let function = self.text_of(function).eq_ignore_ascii_case("function");
            let if_exists = self.if_exists()?;
            let name = self.function_name()?;
            if self.accept(Tok::LParen) && !self.accept(Tok::RParen) {
                loop {
                    self.type_expr()?;
                    if !self.accept(Tok::Comma) {
                        break;
                    }
                }
                self.expect(Tok::RParen)?;
            }
            return Ok(if function {
                Statement::DropFunction { name, if_exists }
            } else {
                Statement::DropAggregate { name, if_exists }
            });
        }
        if self.accept_kw("trigger") {
            let if_exists = self.if_exists()?;
            let name = self.ident()?;
            self.expect_kw("on", "K_ON")?;
            let table = self.qualified_name("table")?;
            return Ok(Statement::DropTrigger {
                name,
                table,
                if_exists,
            });
        }
        if self.accept_kw("role") {
            let if_exists = self.if_exists()?;
            let name = self.role_name()?;
            return Ok(Statement::DropRole { name, if_exists });
        }
        if self.accept_kw("user") {
            let if_exists = self.if_exists()?;
            let name = self.user_name()?;
            return Ok(Statement::DropUser { name, if_exists });
        }
        Err(self.no_viable())
    }

    // ---- roles and permissions ----

    fn bool_literal(&mut self) -> PResult<bool> {
        match self.constant() {
            Some(Literal::Boolean(b)) => Ok(b),
            _ => Err(self.err(ErrKind::Mismatched("BOOLEAN"))),
        }
    }

    fn string_literal(&mut self) -> PResult<String> {
        let t = self.expect(Tok::Str)?;
        Ok(lexer::unquote(self.text_of(t)))
    }

    fn role_options(&mut self) -> PResult<RoleOptions> {
        let mut o = RoleOptions::default();
        loop {
            if self.accept_kw("password") {
                self.expect(Tok::Eq)?;
                o.password = Some(self.string_literal()?);
            } else if self.accept_kw("hashed") {
                self.expect_kw("password", "K_PASSWORD")?;
                self.expect(Tok::Eq)?;
                o.hashed_password = Some(self.string_literal()?);
            } else if self.accept_kw("login") {
                self.expect(Tok::Eq)?;
                o.login = Some(self.bool_literal()?);
            } else if self.accept_kw("superuser") {
                self.expect(Tok::Eq)?;
                o.superuser = Some(self.bool_literal()?);
            } else if self.accept_kw("options") {
                self.expect(Tok::Eq)?;
                match self.property_value()? {
                    PropertyValue::Map(m) => o.options = Some(m),
                    _ => return Err(self.err(ErrKind::Mismatched("'{'"))),
                }
            } else if self.accept_kw("access") {
                self.expect_kw("to", "K_TO")?;
                if self.accept_kw("all") {
                    self.expect_kw("datacenters", "K_DATACENTERS")?;
                    // All datacenters is the default: nothing to restrict.
                    o.access_to_datacenters = None;
                } else {
                    self.expect_kw("datacenters", "K_DATACENTERS")?;
                    self.expect(Tok::LBrace)?;
                    let mut dcs = vec![self.string_literal()?];
                    while self.accept(Tok::Comma) {
                        dcs.push(self.string_literal()?);
                    }
                    self.expect(Tok::RBrace)?;
                    o.access_to_datacenters = Some(dcs);
                }
            } else {
                return Err(self.no_viable());
            }
            if !self.accept_kw("and") {
                break;
            }
        }
        if o.password.is_some() && o.hashed_password.is_some() {
            return Err(
                self.custom("Options 'password' and 'hashed password' are mutually exclusive")
            );
        }
        Ok(o)
    }

    /// `[WITH PASSWORD 'p'] [SUPERUSER | NOSUPERUSER]`
    fn user_options(&mut self) -> PResult<(Option<String>, Option<bool>)> {
        let mut password = None;
        if self.accept_kw("with") {
            self.expect_kw("password", "K_PASSWORD")?;
            password = Some(self.string_literal()?);
        }
        let superuser = if self.accept_kw("superuser") {
            Some(true)
        } else if self.accept_kw("nosuperuser") {
            Some(false)
        } else {
            None
        };
        Ok((password, superuser))
    }

    /// Whether a permission list (rather than a role name) starts here.
    fn permission_ahead(&self) -> bool {
        if self.is_kw(0, "all") {
            return self.is_kw(1, "permissions") || self.is_kw(1, "on");
        }
        let t = self.tok(0);
        t.kind == Tok::Ident
            && PERMISSIONS
                .iter()
                .any(|p| self.text_of(t).eq_ignore_ascii_case(p))
    }

    fn permission_or_all(&mut self) -> PResult<PermissionSpec> {
        if self.accept_kw("all") {
            self.accept_kw("permissions");
            return Ok(PermissionSpec::All);
        }
        let t = self.tok(0);
        if t.kind == Tok::Ident {
            let w = self.text_of(t).to_ascii_lowercase();
            if PERMISSIONS.contains(&w.as_str()) {
                self.bump();
                self.accept_kw("permission");
                return Ok(PermissionSpec::One(w));
            }
        }
        Err(self.no_viable())
    }

    fn resource(&mut self) -> PResult<Resource> {
        if self.is_kw(0, "all") {
            let what = self.text(1).to_ascii_lowercase();
            match what.as_str() {
                "keyspaces" => {
                    self.pos += 2;
                    return Ok(Resource::AllKeyspaces);
                }
                "roles" => {
                    self.pos += 2;
                    return Ok(Resource::AllRoles);
                }
                "mbeans" => {
                    self.pos += 2;
                    return Ok(Resource::AllMbeans);
                }
                "functions" => {
                    self.pos += 2;
                    let keyspace = if self.accept_kw("in") {
                        self.expect_kw("keyspace", "K_KEYSPACE")?;
                        Some(self.keyspace_name()?)
                    } else {
                        None
                    };
                    return Ok(Resource::AllFunctions { keyspace });
                }
                _ => {}
            }
        }
        if self.is_keyspace_kw() {
            self.bump();
            return self.keyspace_name().map(Resource::Keyspace);
        }
        if self.is_kw(0, "role") && !self.at(1, Tok::Dot) && !self.at(1, Tok::Eof) {
            self.bump();
            return self.role_name().map(Resource::Role);
        }
        if (self.is_kw(0, "mbean") || self.is_kw(0, "mbeans")) && self.at(1, Tok::Str) {
            self.bump();
            return self.string_literal().map(Resource::Mbean);
        }
        if self.is_kw(0, "function") && !self.at(1, Tok::Dot) && !self.at(1, Tok::Eof) {
            self.bump();
            let name = self.function_name()?;
            self.expect(Tok::LParen)?;
            let mut arg_types = Vec::new();
            if !self.accept(Tok::RParen) {
                loop {
                    arg_types.push(self.type_expr()?);
                    if !self.accept(Tok::Comma) {
                        break;
                    }
                }
                self.expect(Tok::RParen)?;
            }
            return Ok(Resource::Function { name, arg_types });
        }
        if self.is_table_kw() {
            self.bump();
        }
        self.qualified_name("table").map(Resource::Table)
    }

    fn grant_or_revoke(&mut self, grant: bool) -> PResult<Statement> {
        let (prep, prep_name) = if grant {
            ("to", "K_TO")
        } else {
            ("from", "K_FROM")
        };
        if self.permission_ahead() {
            let permission = self.permission_or_all()?;
            self.expect_kw("on", "K_ON")?;
            let resource = self.resource()?;
            self.expect_kw(prep, prep_name)?;
            let role = self.role_name()?;
            return Ok(if grant {
                Statement::GrantPermission {
                    permission,
                    resource,
                    role,
                }
            } else {
                Statement::RevokePermission {
                    permission,
                    resource,
                    role,
                }
            });
        }
        let role = self.role_name()?;
        self.expect_kw(prep, prep_name)?;
        let other = self.role_name()?;
        Ok(if grant {
            Statement::GrantRole {
                role,
                grantee: other,
            }
        } else {
            Statement::RevokeRole {
                role,
                revokee: other,
            }
        })
    }

    fn list(&mut self) -> PResult<Statement> {
        if self.accept_kw("users") {
            return Ok(Statement::ListUsers);
        }
        if self.accept_kw("roles") {
            let of = if self.accept_kw("of") {
                Some(self.role_name()?)
            } else {
                None
            };
            let recursive = !self.accept_kw("norecursive");
            return Ok(Statement::ListRoles { of, recursive });
        }
        let permission = self.permission_or_all()?;
        let resource = if self.accept_kw("on") {
            Some(self.resource()?)
        } else {
            None
        };
        let of = if self.accept_kw("of") {
            Some(self.role_name()?)
        } else {
            None
        };
        let recursive = !self.accept_kw("norecursive");
        Ok(Statement::ListPermissions {
            permission,
            resource,
            of,
            recursive,
        })
    }

    // ---- DESCRIBE ----

    fn describe(&mut self) -> PResult<DescribeStatement> {
        // Keyword forms win over the generic `DESCRIBE name` (Parser.g's syntactic predicates).
        let target = if self.accept_kw("cluster") {
            DescribeTarget::Cluster
        } else if self.accept_kw("full") {
            self.expect_kw("schema", "K_SCHEMA")?;
            DescribeTarget::Schema { full: true }
        } else if self.accept_kw("schema") {
            DescribeTarget::Schema { full: false }
        } else if self.accept_kw("keyspaces") {
            DescribeTarget::Keyspaces
        } else if (self.is_kw(0, "only") && self.is_kw(1, "keyspace")) || self.is_kw(0, "keyspace")
        {
            let only = self.accept_kw("only");
            self.bump();
            let name = if self.is_ident(0) {
                Some(self.keyspace_name()?)
            } else {
                None
            };
            DescribeTarget::Keyspace { name, only }
        } else if self.accept_kw("tables") {
            DescribeTarget::Tables
        } else if self.is_table_kw() {
            self.bump();
            DescribeTarget::Table(self.qualified_name("table")?)
        } else if self.accept_kw("index") {
            DescribeTarget::Index(self.qualified_name("index")?)
        } else if self.accept_kw("materialized") {
            self.expect_kw("view", "K_VIEW")?;
            DescribeTarget::MaterializedView(self.qualified_name("view")?)
        } else if self.accept_kw("types") {
            DescribeTarget::Types
        } else if self.is_kw(0, "type") && self.is_ident(1) {
            self.bump();
            DescribeTarget::Type(self.user_type_name()?)
        } else if self.accept_kw("functions") {
            DescribeTarget::Functions
        } else if self.is_kw(0, "function") && self.is_function_name(1) {
            self.bump();
            DescribeTarget::Function(self.function_name()?)
        } else if self.accept_kw("aggregates") {
            DescribeTarget::Aggregates
        } else if self.is_kw(0, "aggregate") && self.is_function_name(1) {
            self.bump();
            DescribeTarget::Aggregate(self.function_name()?)
        } else {
            DescribeTarget::Generic(self.qualified_name("table")?)
        };
        let with_internals = if self.accept_kw("with") {
            self.expect_kw("internals", "K_INTERNALS")?;
            true
        } else {
            false
        };
        Ok(DescribeStatement {
            target,
            with_internals,
        })
    }

    // ---- errors ----

    fn format_error(&self, e: PErr) -> CqlError {
        let t = self.toks[e.tok.min(self.toks.len() - 1)];
        let body = match e.kind {
            ErrKind::Custom(m) => return CqlError::Syntax(m),
            ErrKind::NoViable => format!("no viable alternative at input '{}'", self.tok_text(t)),
            ErrKind::Mismatched(exp) => {
                format!("mismatched input '{}' expecting {exp}", self.tok_text(t))
            }
        };
        if t.kind == Tok::Eof {
            // ANTLR 3 reports past-the-end input with its shared EOF token, which has no
            // position; Cassandra prints it as such and adds no snippet.
            return CqlError::Syntax(format!("line 0:-1 {body}"));
        }
        let (line, col) = line_col(self.src, t.start as usize);
        let mut msg = format!("line {line}:{col} {body}");
        self.append_snippet(&mut msg, e.tok.min(self.toks.len() - 1));
        CqlError::Syntax(msg)
    }

    fn tok_text(&self, t: Token) -> &str {
        if t.kind == Tok::Eof {
            "<EOF>"
        } else {
            self.text_of(t)
        }
    }

    /// Cassandra's `ErrorCollector.appendQuerySnippet`: from ten ANTLR tokens (hidden ones
    /// included) before the offending token up to it, the offending token in brackets.
    fn append_snippet(&self, out: &mut String, off: usize) {
        // ANTLR index of every real token: itself plus the hidden tokens before it.
        let mut vidx = Vec::with_capacity(off + 1);
        let mut acc = 0usize;
        for i in 0..=off {
            acc += self.gaps[i] as usize;
            vidx.push(acc + i);
        }
        let target = vidx[off].saturating_sub(10);
        // Walk ANTLR's token sequence; a hidden token there starts the snippet where the gap
        // before the next real token starts.
        let mut from_pos = 0usize;
        let mut v = 0usize;
        'walk: for i in 0..=off {
            for _ in 0..self.gaps[i] {
                if v == target {
                    from_pos = if i == 0 {
                        0
                    } else {
                        self.toks[i - 1].end as usize
                    };
                    break 'walk;
                }
                v += 1;
            }
            if v == target {
                from_pos = self.toks[i].start as usize;
                break;
            }
            v += 1;
        }
        let off_tok = self.toks[off];
        let (s, e) = (off_tok.start as usize, off_tok.end as usize);
        let include_start = from_pos == 0;
        // Java's split drops trailing empty lines, so only newlines may follow the end.
        let include_end = self.src[e..].bytes().all(|b| b == b'\n');
        out.push_str(" (");
        if !include_start {
            out.push_str("...");
        }
        // Java joins the split lines without separators.
        let piece = |a: usize, b: usize, out: &mut String| {
            for ch in self.src[a..b].chars() {
                if ch != '\n' {
                    out.push(ch);
                }
            }
        };
        piece(from_pos, s, out);
        out.push('[');
        piece(s, e, out);
        out.push(']');
        if !include_end {
            out.push_str("...");
        }
        out.push(')');
    }
}

fn negate(t: Term) -> Term {
    match t {
        Term::Literal(Literal::Integer(s)) if !s.starts_with('-') => {
            Term::Literal(Literal::Integer(format!("-{s}")))
        }
        Term::Literal(Literal::Float(s)) if !s.starts_with('-') => {
            Term::Literal(Literal::Float(format!("-{s}")))
        }
        Term::Literal(Literal::Duration(s)) if !s.starts_with('-') => {
            Term::Literal(Literal::Duration(format!("-{s}")))
        }
        Term::Literal(Literal::Infinity) => Term::Literal(Literal::NegInfinity),
        Term::Literal(Literal::NaN) => Term::Literal(Literal::NaN),
        other => Term::Negate(Box::new(other)),
    }
}

/// 1-based line and 0-based character column of a byte offset.
fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(src.len());
    let before = &src[..offset];
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |p| p + 1);
    (line, src[line_start..offset].chars().count())
}
