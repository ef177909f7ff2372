//! The CQL language: a lexer and a recursive-descent parser producing [`ast::Statement`].
//! Syntax errors use Cassandra's wording (`line 1:9 no viable alternative at input 'x'`,
//! `line 1:14 mismatched input 'x' expecting K_FROM`) so drivers and cqlsh print what users expect.

pub mod ast;
mod display;
mod lexer;
mod parse;

#[cfg(test)]
mod tests;

pub use display::Ident;
pub use parse::{is_native_type, is_reserved};

use crate::error::CqlResult;

/// A parsed statement with its bind markers.
#[derive(Clone, Debug, PartialEq)]
pub struct Parsed {
    pub statement: ast::Statement,
    /// Number of bind markers (`?` and `:name`).
    pub bind_count: usize,
    /// For each marker in order, its name for `:name` markers.
    pub bind_names: Vec<Option<String>>,
}

/// Parses one statement (a trailing `;` is allowed). Errors are `CqlError::Syntax`.
pub fn parse(text: &str) -> CqlResult<Parsed> {
    let mut p = parse::Parser::new(text)?;
    let statement = p.parse_query()?;
    let bind_names = p.into_binds();
    Ok(Parsed {
        statement,
        bind_count: bind_names.len(),
        bind_names,
    })
}

/// Parses a type expression as stored in system_schema (`frozen<map<text, int>>`).
pub fn parse_type(text: &str) -> CqlResult<ast::TypeExpr> {
    parse::Parser::new(text)?.parse_type_only()
}

/// Entry point for fuzzers (`cargo fuzz`, proptest): runs every public parsing function on
/// arbitrary bytes and checks the invariants that must hold for any input: no panic, errors
/// are syntax errors, and a parsed statement prints as CQL that parses back to itself.
pub fn fuzz_one(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse(text) {
        Ok(p) => {
            let printed = p.statement.to_string();
            let again = parse(&printed)
                .unwrap_or_else(|e| panic!("{text:?} printed as {printed:?}, which fails: {e}"));
            assert_eq!(
                again.statement, p.statement,
                "{text:?} printed as {printed:?}"
            );
            assert_eq!(
                again.bind_names, p.bind_names,
                "{text:?} printed as {printed:?}"
            );
        }
        Err(e) => assert!(matches!(e, crate::CqlError::Syntax(_)), "{e:?}"),
    }
    if let Ok(t) = parse_type(text) {
        assert_eq!(parse_type(&t.to_string()).ok(), Some(t));
    }
}
