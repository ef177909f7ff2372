//! Guards on statement text checked before parsing.

use crate::error::{CqlError, CqlResult};

/// Deepest nesting of brackets, braces, parentheses and type arguments a statement may use.
/// The parser, the type resolver and the value codec all recurse once per level; a bound
/// well below what a worker thread's stack holds keeps a hostile statement from crashing
/// the node, and no real schema or literal comes near it.
pub const MAX_NESTING: usize = 64;

/// Refuses statements nested deeper than [`MAX_NESTING`]. String literals, quoted names and
/// `$$` strings are skipped; `<` counts only directly after a name (`list<`), so comparison
/// operators are not mistaken for type arguments.
pub fn check_nesting(query: &str) -> CqlResult<()> {
    let b = query.as_bytes();
    let mut depth = 0usize;
    let mut angles = 0usize;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            q @ (b'\'' | b'"') => {
                i += 1;
                while i < b.len() {
                    if b[i] == q {
                        if b.get(i + 1) == Some(&q) {
                            i += 1;
                        } else {
                            break;
                        }
                    }
                    i += 1;
                }
            }
            b'$' if b.get(i + 1) == Some(&b'$') => {
                i += 2;
                while i + 1 < b.len() && !(b[i] == b'$' && b[i + 1] == b'$') {
                    i += 1;
                }
                i += 1;
            }
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            b'<' if i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_') => {
                depth += 1;
                angles += 1;
            }
            b'>' if angles > 0 => {
                angles -= 1;
                depth = depth.saturating_sub(1);
            }
            _ => {}
        }
        if depth > MAX_NESTING {
            return Err(CqlError::invalid(format!(
                "Statement nested too deeply: more than {MAX_NESTING} levels of collections, tuples, types or parentheses"
            )));
        }
        i += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_limits() {
        let deep = format!(
            "INSERT INTO t (k, v) VALUES (1, {}1{})",
            "[".repeat(70),
            "]".repeat(70)
        );
        assert!(check_nesting(&deep).is_err());
        let ty = format!(
            "CREATE TABLE t (k int PRIMARY KEY, v {}int{})",
            "frozen<list<".repeat(40),
            ">>".repeat(40)
        );
        assert!(check_nesting(&ty).is_err());
        let ok = format!("SELECT * FROM t WHERE {}", vec!["a < 1"; 100].join(" AND "));
        assert!(check_nesting(&ok).is_ok());
        assert!(
            check_nesting(&format!("INSERT INTO t (k) VALUES ('{}')", "[".repeat(100))).is_ok()
        );
        assert!(
            check_nesting(
                "CREATE TABLE t (k int PRIMARY KEY, v frozen<map<int, frozen<list<set<int>>>>>)"
            )
            .is_ok()
        );
    }
}
