//! The CQL lexer. Tokens are spans over the source text, so lexing allocates only the token
//! vector; the parser slices and (for quoted forms) unescapes text when it needs it.

/// What a token is. Words (keywords and identifiers alike) are all `Ident`: whether a word is
/// a keyword depends on where it appears, since Cassandra lets most keywords name columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tok {
    Ident,
    /// `"..."`; the span includes the quotes.
    QuotedIdent,
    /// `'...'` or `$$...$$`; the span includes the delimiters.
    Str,
    Integer,
    Float,
    /// `0x...`
    Hex,
    Uuid,
    Duration,
    /// `-NaN` as one token (`NaN` alone is a word).
    NegNaN,
    /// `-Infinity` as one token.
    NegInfinity,
    QMark,
    LParen,
    RParen,
    LBracket,
    RBracket,
    LBrace,
    RBrace,
    Comma,
    Semi,
    Dot,
    Colon,
    Star,
    Slash,
    Percent,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Plus,
    Minus,
    PlusEq,
    MinusEq,
    Eof,
}

impl Tok {
    /// The name ANTLR prints for this token type in `expecting ...`.
    pub fn display_name(self) -> &'static str {
        match self {
            Tok::Ident => "IDENT",
            Tok::QuotedIdent => "QUOTED_NAME",
            Tok::Str => "STRING_LITERAL",
            Tok::Integer => "INTEGER",
            Tok::Float => "FLOAT",
            Tok::Hex => "HEXNUMBER",
            Tok::Uuid => "UUID",
            Tok::Duration => "DURATION",
            Tok::NegNaN => "K_NEGATIVE_NAN",
            Tok::NegInfinity => "K_NEGATIVE_INFINITY",
            Tok::QMark => "QMARK",
            Tok::LParen => "'('",
            Tok::RParen => "')'",
            Tok::LBracket => "'['",
            Tok::RBracket => "']'",
            Tok::LBrace => "'{'",
            Tok::RBrace => "'}'",
            Tok::Comma => "','",
            Tok::Semi => "';'",
            Tok::Dot => "'.'",
            Tok::Colon => "':'",
            Tok::Star => "'*'",
            Tok::Slash => "'/'",
            Tok::Percent => "'%'",
            Tok::Eq => "'='",
            Tok::Ne => "'!='",
            Tok::Lt => "'<'",
            Tok::Le => "'<='",
            Tok::Gt => "'>'",
            Tok::Ge => "'>='",
            Tok::Plus => "'+'",
            Tok::Minus => "'-'",
            Tok::PlusEq => "'+='",
            Tok::MinusEq => "'-='",
            Tok::Eof => "EOF",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Token {
    pub kind: Tok,
    /// Byte offsets into the source.
    pub start: u32,
    pub end: u32,
}

/// A lexing failure: byte offset of the offending character and ANTLR-style message body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LexError {
    pub offset: usize,
    pub message: String,
}

/// Tokenizes `src`. The result always ends with an `Eof` token. Whitespace and comments are
/// dropped: `gaps` counts, per token, how many hidden tokens (whitespace runs, comments) ANTLR
/// would have put before it, which the error snippet needs to match Cassandra's.
pub fn tokenize(src: &str) -> Result<(Vec<Token>, Vec<u8>), LexError> {
    let b = src.as_bytes();
    let mut toks = Vec::with_capacity(src.len() / 3 + 2);
    let mut gaps = Vec::with_capacity(src.len() / 3 + 2);
    let mut i = 0usize;
    let mut gap: u8 = 0;
    while i < b.len() {
        let c = b[i];
        // Hidden tokens.
        if c.is_ascii_whitespace() {
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            gap = gap.saturating_add(1);
            continue;
        }
        if (c == b'-' && b.get(i + 1) == Some(&b'-')) || (c == b'/' && b.get(i + 1) == Some(&b'/'))
        {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            gap = gap.saturating_add(1);
            continue;
        }
        if c == b'/' && b.get(i + 1) == Some(&b'*') {
            match src[i + 2..].find("*/") {
                Some(p) => i = i + 2 + p + 2,
                None => {
                    return Err(LexError {
                        offset: src.len(),
                        message: "mismatched character '<EOF>' expecting '*'".into(),
                    });
                }
            }
            gap = gap.saturating_add(1);
            continue;
        }
        let start = i;
        let kind = match c {
            b'\'' => {
                i = scan_quoted(b, i, b'\'')?;
                Tok::Str
            }
            b'"' => {
                i = scan_quoted(b, i, b'"')?;
                Tok::QuotedIdent
            }
            b'$' if b.get(i + 1) == Some(&b'$') => match src[i + 2..].find("$$") {
                Some(p) => {
                    i = i + 2 + p + 2;
                    Tok::Str
                }
                None => {
                    return Err(LexError {
                        offset: src.len(),
                        message: "mismatched character '<EOF>' expecting '$'".into(),
                    });
                }
            },
            b'0'..=b'9' => {
                let (k, e) = scan_number_like(src, i);
                i = e;
                k
            }
            b'-' => {
                if b.get(i + 1).is_some_and(u8::is_ascii_digit) {
                    let (k, e) = scan_number_like(src, i + 1);
                    // `-` only joins a number, a duration or nothing: `-1d` is a duration, a
                    // negative UUID/hex is not a thing, so those lex as `-` then the literal.
                    if matches!(k, Tok::Integer | Tok::Float | Tok::Duration) {
                        i = e;
                        k
                    } else {
                        i += 1;
                        Tok::Minus
                    }
                } else if let Some((k, e)) = scan_negative_word(src, i + 1) {
                    i = e;
                    k
                } else if b.get(i + 1) == Some(&b'=') {
                    i += 2;
                    Tok::MinusEq
                } else {
                    i += 1;
                    Tok::Minus
                }
            }
            b'a'..=b'z' | b'A'..=b'Z' => {
                let (k, e) = scan_word(src, i);
                i = e;
                k
            }
            b'?' => one(&mut i, Tok::QMark),
            b'(' => one(&mut i, Tok::LParen),
            b')' => one(&mut i, Tok::RParen),
            b'[' => one(&mut i, Tok::LBracket),
            b']' => one(&mut i, Tok::RBracket),
            b'{' => one(&mut i, Tok::LBrace),
            b'}' => one(&mut i, Tok::RBrace),
            b',' => one(&mut i, Tok::Comma),
            b';' => one(&mut i, Tok::Semi),
            b'.' => one(&mut i, Tok::Dot),
            b':' => one(&mut i, Tok::Colon),
            b'*' => one(&mut i, Tok::Star),
            b'/' => one(&mut i, Tok::Slash),
            b'%' => one(&mut i, Tok::Percent),
            b'=' => one(&mut i, Tok::Eq),
            b'!' if b.get(i + 1) == Some(&b'=') => two(&mut i, Tok::Ne),
            b'<' if b.get(i + 1) == Some(&b'=') => two(&mut i, Tok::Le),
            b'<' => one(&mut i, Tok::Lt),
            b'>' if b.get(i + 1) == Some(&b'=') => two(&mut i, Tok::Ge),
            b'>' => one(&mut i, Tok::Gt),
            b'+' if b.get(i + 1) == Some(&b'=') => two(&mut i, Tok::PlusEq),
            b'+' => one(&mut i, Tok::Plus),
            _ => {
                let ch = src[i..].chars().next().unwrap_or('?');
                return Err(LexError {
                    offset: i,
                    message: format!("no viable alternative at character '{ch}'"),
                });
            }
        };
        toks.push(Token {
            kind,
            start: start as u32,
            end: i as u32,
        });
        gaps.push(gap);
        gap = 0;
    }
    toks.push(Token {
        kind: Tok::Eof,
        start: b.len() as u32,
        end: b.len() as u32,
    });
    gaps.push(gap);
    Ok((toks, gaps))
}

fn one(i: &mut usize, k: Tok) -> Tok {
    *i += 1;
    k
}

fn two(i: &mut usize, k: Tok) -> Tok {
    *i += 2;
    k
}

/// Scans `'...'`/`"..."` where a doubled quote is an escaped quote. Returns the end offset.
fn scan_quoted(b: &[u8], start: usize, q: u8) -> Result<usize, LexError> {
    let mut i = start + 1;
    loop {
        match b.get(i) {
            None => {
                return Err(LexError {
                    offset: b.len(),
                    message: format!("mismatched character '<EOF>' expecting '{}'", q as char),
                });
            }
            Some(&c) if c == q => {
                if b.get(i + 1) == Some(&q) {
                    i += 2;
                } else {
                    return Ok(i + 1);
                }
            }
            Some(_) => i += 1,
        }
    }
}

fn is_word_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// End of the run of word characters from `i`, also accepting `µ` (U+00B5, the micro sign)
/// and `μ` (U+03BC) since duration units use it.
fn word_end(src: &str, mut i: usize) -> usize {
    let b = src.as_bytes();
    while i < b.len() {
        if is_word_byte(b[i]) {
            i += 1;
        } else if src[i..].starts_with('µ') || src[i..].starts_with('μ') {
            i += 2;
        } else {
            break;
        }
    }
    i
}

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` at `i`, not followed by a word character.
fn uuid_at(b: &[u8], i: usize) -> bool {
    if b.len() < i + 36 {
        return false;
    }
    for (k, &c) in b[i..i + 36].iter().enumerate() {
        let ok = if matches!(k, 8 | 13 | 18 | 23) {
            c == b'-'
        } else {
            c.is_ascii_hexdigit()
        };
        if !ok {
            return false;
        }
    }
    !b.get(i + 36).copied().is_some_and(is_word_byte)
}

/// A token starting with a digit: UUID, hex blob, duration, float or integer.
fn scan_number_like(src: &str, i: usize) -> (Tok, usize) {
    let b = src.as_bytes();
    if uuid_at(b, i) {
        return (Tok::Uuid, i + 36);
    }
    if b[i] == b'0' && matches!(b.get(i + 1), Some(b'x' | b'X')) {
        let mut e = i + 2;
        while e < b.len() && b[e].is_ascii_hexdigit() {
            e += 1;
        }
        return (Tok::Hex, e);
    }
    let we = word_end(src, i);
    if is_unit_duration(&src[i..we]) {
        return (Tok::Duration, we);
    }
    let mut e = i;
    while e < b.len() && b[e].is_ascii_digit() {
        e += 1;
    }
    let mut kind = Tok::Integer;
    // `1.` is a float but `1..` is not (the `..` belongs elsewhere).
    if b.get(e) == Some(&b'.') && b.get(e + 1) != Some(&b'.') {
        kind = Tok::Float;
        e += 1;
        while e < b.len() && b[e].is_ascii_digit() {
            e += 1;
        }
    }
    if matches!(b.get(e), Some(b'e' | b'E')) {
        let mut x = e + 1;
        if matches!(b.get(x), Some(b'+' | b'-')) {
            x += 1;
        }
        if b.get(x).is_some_and(u8::is_ascii_digit) {
            while x < b.len() && b[x].is_ascii_digit() {
                x += 1;
            }
            kind = Tok::Float;
            e = x;
        }
    }
    (kind, e)
}

/// `-NaN` / `-Infinity` directly after the `-` at `i - 1`.
fn scan_negative_word(src: &str, i: usize) -> Option<(Tok, usize)> {
    let b = src.as_bytes();
    if !b.get(i).is_some_and(u8::is_ascii_alphabetic) {
        return None;
    }
    let e = word_end(src, i);
    let w = &src[i..e];
    if w.eq_ignore_ascii_case("nan") {
        Some((Tok::NegNaN, e))
    } else if w.eq_ignore_ascii_case("infinity") {
        Some((Tok::NegInfinity, e))
    } else {
        None
    }
}

/// A token starting with a letter: UUID, ISO-8601 duration or a word.
fn scan_word(src: &str, i: usize) -> (Tok, usize) {
    let b = src.as_bytes();
    if b[i].is_ascii_hexdigit() && uuid_at(b, i) {
        return (Tok::Uuid, i + 36);
    }
    if matches!(b[i], b'p' | b'P') {
        if let Some(e) = iso_alternative_duration(b, i) {
            return (Tok::Duration, e);
        }
        let we = word_end(src, i);
        if is_iso_duration(&src[i..we]) {
            return (Tok::Duration, we);
        }
    }
    let mut e = i;
    while e < b.len() && is_word_byte(b[e]) {
        e += 1;
    }
    (Tok::Ident, e)
}

/// The kind of token the whole of `s` lexes as when it starts with a letter, or `Eof` when
/// it is not exactly one token. Lets the printer know when a name needs quotes.
pub fn scan_word_kind(s: &str) -> Tok {
    if !s.as_bytes().first().is_some_and(u8::is_ascii_alphabetic) {
        return Tok::Eof;
    }
    let (k, e) = scan_word(s, 0);
    if e == s.len() { k } else { Tok::Eof }
}

/// `1h30m`, `12mo`, `3us`, `3µs`: one or more `DIGITS UNIT` groups.
fn is_unit_duration(w: &str) -> bool {
    let b = w.as_bytes();
    let mut i = 0;
    let mut groups = 0;
    while i < b.len() {
        let ds = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == ds {
            return false;
        }
        let us = i;
        while i < b.len() && !b[i].is_ascii_digit() {
            i += 1;
        }
        let unit = &w[us..i];
        let ok = ["y", "mo", "w", "d", "h", "m", "s", "ms", "us", "ns"]
            .iter()
            .any(|u| unit.eq_ignore_ascii_case(u))
            || unit == "µs"
            || unit == "µS"
            || unit == "μs"
            || unit == "μS";
        if !ok {
            return false;
        }
        groups += 1;
    }
    groups > 0
}

/// `P[nY][nM][nD][T[nH][nM][nS]]` with at least one component, or `PnW`.
fn is_iso_duration(w: &str) -> bool {
    let b = w.as_bytes();
    if b.len() < 3 || !matches!(b[0], b'p' | b'P') {
        return false;
    }
    let mut i = 1;
    let read_group = |i: &mut usize| -> Option<u8> {
        let s = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        if *i == s || *i >= b.len() {
            return None;
        }
        let u = b[*i].to_ascii_uppercase();
        *i += 1;
        Some(u)
    };
    // `PnW` stands alone.
    {
        let mut j = i;
        if read_group(&mut j) == Some(b'W') && j == b.len() {
            return true;
        }
    }
    let mut comps = 0;
    let mut order = 0;
    while i < b.len() && !matches!(b[i], b't' | b'T') {
        let Some(u) = read_group(&mut i) else {
            return false;
        };
        let rank = match u {
            b'Y' => 1,
            b'M' => 2,
            b'D' => 3,
            _ => return false,
        };
        if rank <= order {
            return false;
        }
        order = rank;
        comps += 1;
    }
    if i < b.len() {
        i += 1; // T
        let mut order = 0;
        let mut tcomps = 0;
        while i < b.len() {
            let Some(u) = read_group(&mut i) else {
                return false;
            };
            let rank = match u {
                b'H' => 1,
                b'M' => 2,
                b'S' => 3,
                _ => return false,
            };
            if rank <= order {
                return false;
            }
            order = rank;
            tcomps += 1;
        }
        if tcomps == 0 {
            return false;
        }
        comps += tcomps;
    }
    comps > 0
}

/// `P0001-02-03T04:05:06`: returns the end offset when it matches at `i`.
fn iso_alternative_duration(b: &[u8], i: usize) -> Option<usize> {
    const PAT: &[u8] = b"P####-##-##T##:##:##";
    if b.len() < i + PAT.len() {
        return None;
    }
    for (k, &p) in PAT.iter().enumerate() {
        let c = b[i + k];
        let ok = match p {
            b'#' => c.is_ascii_digit(),
            b'P' | b'T' => c.eq_ignore_ascii_case(&p),
            _ => c == p,
        };
        if !ok {
            return None;
        }
    }
    let e = i + PAT.len();
    if b.get(e).copied().is_some_and(is_word_byte) {
        return None;
    }
    Some(e)
}

/// Unescapes the text of a `Str` or `QuotedIdent` token (span including delimiters).
pub fn unquote(raw: &str) -> String {
    if let Some(inner) = raw.strip_prefix("$$") {
        return inner.strip_suffix("$$").unwrap_or(inner).to_owned();
    }
    let q = raw.as_bytes()[0] as char;
    let inner = &raw[1..raw.len() - 1];
    if inner.contains(q) {
        let doubled: String = [q, q].iter().collect();
        inner.replace(&doubled, &q.to_string())
    } else {
        inner.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(s: &str) -> Vec<Tok> {
        tokenize(s).unwrap().0.iter().map(|t| t.kind).collect()
    }

    #[test]
    fn literals() {
        use Tok::*;
        assert_eq!(
            kinds("1 1.5 1e10 -2.5E-3 1."),
            [Integer, Float, Float, Float, Float, Eof]
        );
        assert_eq!(kinds("0xCAFE 0x"), [Hex, Hex, Eof]);
        assert_eq!(
            kinds("550e8400-e29b-41d4-a716-446655440000 deadbeef-e29b-41d4-a716-446655440000"),
            [Uuid, Uuid, Eof]
        );
        assert_eq!(
            kinds("1h30m 12mo 3µs 3us -1d P1DT2H PT5M P1W P0001-02-03T04:05:06"),
            [
                Duration, Duration, Duration, Duration, Duration, Duration, Duration, Duration,
                Duration, Eof
            ]
        );
        assert_eq!(kinds("p pt p1 price"), [Ident, Ident, Ident, Ident, Eof]);
        assert_eq!(
            kinds("-NaN -Infinity - x -1"),
            [NegNaN, NegInfinity, Minus, Ident, Integer, Eof]
        );
        assert_eq!(
            kinds("'a''b' $$x'y$$ \"Q\"\"n\""),
            [Str, Str, QuotedIdent, Eof]
        );
        assert_eq!(
            kinds("a+=1 b-=2 c!=d<=e>=f"),
            [
                Ident, PlusEq, Integer, Ident, MinusEq, Integer, Ident, Ne, Ident, Le, Ident, Ge,
                Ident, Eof
            ]
        );
    }

    #[test]
    fn comments_and_gaps() {
        let (t, g) = tokenize("a -- c\n /* x */ b // y").unwrap();
        assert_eq!(t.len(), 3);
        // ws, `-- c`, newline+ws, `/* x */`, ws before `b`.
        assert_eq!(g, [0, 5, 2]);
    }

    #[test]
    fn unescape() {
        assert_eq!(unquote("'a''b'"), "a'b");
        assert_eq!(unquote("$$x'y$$"), "x'y");
        assert_eq!(unquote("\"Q\"\"n\""), "Q\"n");
    }

    #[test]
    fn errors() {
        assert!(tokenize("'abc").is_err());
        assert!(tokenize("a # b").is_err());
        assert!(tokenize("/* x").is_err());
        assert!(tokenize("$$ x").is_err());
    }
}
