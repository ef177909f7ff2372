//! Cassandra's reconciliation rules, as pure functions on the data model.
//!
//! Every rule here is a *total order* (or, for counters, a sum) so that merging is associative
//! and commutative: a memtable that merges writes one at a time, a future SSTable merge and a
//! naive "pick the winner among all versions" must agree. That is also why expiry does not
//! take part in reconciliation: `now` differs between the moment two writes are merged and
//! the moment they are read, so expiry is applied only when reading.

use std::cmp::Ordering;

use bytes::Bytes;

use crate::model::*;

/// Whether `a` supersedes `b` as a deletion (later mark wins, then later local time).
pub fn deletion_supersedes(a: &DeletionTime, b: &DeletionTime) -> bool {
    (a.marked_for_delete_at, a.local_deletion_time)
        > (b.marked_for_delete_at, b.local_deletion_time)
}

/// The stronger of two optional deletions.
pub fn max_deletion(a: Option<DeletionTime>, b: Option<DeletionTime>) -> Option<DeletionTime> {
    match (a, b) {
        (Some(x), Some(y)) => Some(if deletion_supersedes(&y, &x) { y } else { x }),
        (x, None) => x,
        (None, y) => y,
    }
}

/// Whether data written at `ts` is shadowed by `deletion`.
pub fn shadowed(ts: Timestamp, deletion: Option<DeletionTime>) -> bool {
    deletion.is_some_and(|d| ts <= d.marked_for_delete_at)
}

/// Rank of a cell kind on equal timestamps: tombstone > expiring > plain live.
///
/// This is Cassandra 4's rule (CASSANDRA-14592): an expiring cell is ranked as the tombstone
/// it will become, so the winner does not depend on the clock at reconciliation time.
fn kind_rank(v: &CellValue) -> u8 {
    match v {
        CellValue::Live { ttl: None, .. } | CellValue::Counter { .. } => 0,
        CellValue::Live { ttl: Some(_), .. } => 1,
        CellValue::Tombstone { .. } => 2,
    }
}

/// Orders two non-counter versions of one cell; the greater one wins.
///
/// Timestamp first; then by kind (tombstone, expiring, live); two tombstones: the later local
/// deletion time; two expiring cells: the later expiry, then the greater value; two plain
/// live cells: the greater value.
pub fn cell_order(a: &Cell, b: &Cell) -> Ordering {
    a.timestamp
        .cmp(&b.timestamp)
        .then_with(|| kind_rank(&a.value).cmp(&kind_rank(&b.value)))
        .then_with(|| match (&a.value, &b.value) {
            (
                CellValue::Tombstone {
                    local_deletion_time: x,
                },
                CellValue::Tombstone {
                    local_deletion_time: y,
                },
            ) => x.cmp(y),
            (CellValue::Live { value: x, ttl: tx }, CellValue::Live { value: y, ttl: ty }) => {
                let exp = |t: &Option<Ttl>| t.map_or(0, |t| t.local_expiration_time);
                exp(tx).cmp(&exp(ty)).then_with(|| x.cmp(y))
            }
            (CellValue::Counter { value: x }, CellValue::Counter { value: y }) => x.cmp(y),
            // Live vs counter on one column is a caller bug; order them deterministically.
            (CellValue::Live { .. }, CellValue::Counter { .. }) => Ordering::Less,
            (CellValue::Counter { .. }, CellValue::Live { .. }) => Ordering::Greater,
            _ => Ordering::Equal,
        })
}

/// Merges two versions of one cell (same column and path).
///
/// Counters add up: each applied counter write is a distinct delta, and on a single node
/// every delta reaches exactly one memtable once, so the sum is the counter's value. A counter
/// tombstone at a timestamp >= the counter's wins (Cassandra never resurrects counters).
pub fn reconcile_cells(a: Cell, b: Cell) -> Cell {
    if let (CellValue::Counter { value: x }, CellValue::Counter { value: y }) = (&a.value, &b.value)
    {
        return Cell {
            column: a.column,
            path: a.path,
            timestamp: a.timestamp.max(b.timestamp),
            value: CellValue::Counter {
                value: x.wrapping_add(*y),
            },
        };
    }
    if cell_order(&a, &b) == Ordering::Less {
        b
    } else {
        a
    }
}

/// Whether liveness `a` supersedes `b`: later timestamp, then expiring over non-expiring
/// (matching Cassandra's `LivenessInfo.supersedes`), then the later expiry.
pub fn liveness_supersedes(a: &LivenessInfo, b: &LivenessInfo) -> bool {
    if a.timestamp != b.timestamp {
        return a.timestamp > b.timestamp;
    }
    match (&a.ttl, &b.ttl) {
        (Some(x), Some(y)) => x.local_expiration_time > y.local_expiration_time,
        (Some(_), None) => true,
        _ => false,
    }
}

/// Whether a live or expiring value is still live at `now`.
pub fn ttl_live(ttl: &Option<Ttl>, now: LocalTime) -> bool {
    ttl.is_none_or(|t| now < t.local_expiration_time)
}

/// Whether a cell is live at `now` (ignoring deletions above it).
pub fn cell_live(c: &Cell, now: LocalTime) -> bool {
    match &c.value {
        CellValue::Live { ttl, .. } => ttl_live(ttl, now),
        CellValue::Counter { .. } => true,
        CellValue::Tombstone { .. } => false,
    }
}

fn cell_key(c: &Cell) -> (ColumnId, Option<&Bytes>) {
    (c.column, c.path.as_ref())
}

/// Merges `from` into `into` (same clustering).
pub fn merge_row(into: &mut Row, from: Row) {
    into.liveness = match (into.liveness, from.liveness) {
        (Some(a), Some(b)) => Some(if liveness_supersedes(&b, &a) { b } else { a }),
        (a, None) => a,
        (None, b) => b,
    };
    into.deletion = max_deletion(into.deletion, from.deletion);
    for (col, d) in from.complex_deletions {
        match into
            .complex_deletions
            .binary_search_by_key(&col, |(c, _)| *c)
        {
            Ok(i) => {
                let cur = &mut into.complex_deletions[i].1;
                if deletion_supersedes(&d, cur) {
                    *cur = d;
                }
            }
            Err(i) => into.complex_deletions.insert(i, (col, d)),
        }
    }
    into.cells = merge_cells(std::mem::take(&mut into.cells), from.cells);
}

/// Merges two cell lists sorted by (column, path). Unsorted input is tolerated (it is
/// sorted first) because a mutation read back from disk is not trusted to be well formed.
pub fn merge_cells(mut a: Vec<Cell>, mut b: Vec<Cell>) -> Vec<Cell> {
    normalize_cells(&mut a);
    normalize_cells(&mut b);
    if a.is_empty() {
        return b;
    }
    if b.is_empty() {
        return a;
    }
    let mut out = Vec::with_capacity(a.len() + b.len());
    let mut ia = a.into_iter().peekable();
    let mut ib = b.into_iter().peekable();
    loop {
        let ord = match (ia.peek(), ib.peek()) {
            (Some(x), Some(y)) => cell_key(x).cmp(&cell_key(y)),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => break,
        };
        match ord {
            Ordering::Less => out.extend(ia.next()),
            Ordering::Greater => out.extend(ib.next()),
            Ordering::Equal => {
                let (x, y) = (ia.next(), ib.next());
                if let (Some(x), Some(y)) = (x, y) {
                    out.push(reconcile_cells(x, y));
                }
            }
        }
    }
    out
}

/// Sorts by (column, path) and reconciles duplicates.
pub fn normalize_cells(cells: &mut Vec<Cell>) {
    if cells.windows(2).all(|w| cell_key(&w[0]) < cell_key(&w[1])) {
        return;
    }
    cells.sort_by(|x, y| cell_key(x).cmp(&cell_key(y)));
    let mut out: Vec<Cell> = Vec::with_capacity(cells.len());
    for c in cells.drain(..) {
        match out.last_mut() {
            Some(last) if cell_key(last) == cell_key(&c) => {
                let prev = out.pop().expect("just matched");
                out.push(reconcile_cells(prev, c));
            }
            _ => out.push(c),
        }
    }
    *cells = out;
}

/// Whether `key` satisfies a start bound (prefix semantics, see [`ClusteringBound`]).
pub fn start_admits(b: &ClusteringBound, key: &[u8]) -> bool {
    if b.prefix.is_empty() {
        return true;
    }
    if b.inclusive {
        key >= &b.prefix[..]
    } else {
        key > &b.prefix[..] && !key.starts_with(&b.prefix)
    }
}

/// Whether `key` satisfies an end bound (prefix semantics, see [`ClusteringBound`]).
pub fn end_admits(b: &ClusteringBound, key: &[u8]) -> bool {
    if b.prefix.is_empty() {
        return true;
    }
    if b.inclusive {
        key <= &b.prefix[..] || key.starts_with(&b.prefix)
    } else {
        key < &b.prefix[..]
    }
}

/// Whether `key` lies in `range`.
pub fn range_admits(r: &ClusteringRange, key: &[u8]) -> bool {
    start_admits(&r.start, key) && end_admits(&r.end, key)
}

/// The smallest byte string greater than every string starting with `prefix`, if any.
pub fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut v = prefix.to_vec();
    while let Some(last) = v.pop() {
        if last != 0xff {
            v.push(last + 1);
            return Some(v);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(ts: i64, v: &'static [u8]) -> Cell {
        Cell {
            column: 1,
            path: None,
            timestamp: ts,
            value: CellValue::Live {
                value: Bytes::from_static(v),
                ttl: None,
            },
        }
    }

    fn tomb(ts: i64) -> Cell {
        Cell {
            column: 1,
            path: None,
            timestamp: ts,
            value: CellValue::Tombstone {
                local_deletion_time: 1,
            },
        }
    }

    #[test]
    fn highest_timestamp_wins() {
        assert_eq!(reconcile_cells(live(1, b"z"), live(2, b"a")), live(2, b"a"));
        assert_eq!(reconcile_cells(live(2, b"a"), live(1, b"z")), live(2, b"a"));
        assert_eq!(reconcile_cells(tomb(1), live(2, b"a")), live(2, b"a"));
        assert_eq!(reconcile_cells(live(3, b"a"), tomb(2)), live(3, b"a"));
    }

    #[test]
    fn tombstone_wins_ties() {
        assert_eq!(reconcile_cells(live(2, b"a"), tomb(2)), tomb(2));
        assert_eq!(reconcile_cells(tomb(2), live(2, b"a")), tomb(2));
    }

    #[test]
    fn greater_value_wins_ties() {
        assert_eq!(reconcile_cells(live(2, b"a"), live(2, b"b")), live(2, b"b"));
        assert_eq!(reconcile_cells(live(2, b"b"), live(2, b"a")), live(2, b"b"));
        assert_eq!(
            reconcile_cells(live(2, b"b"), live(2, b"ab")),
            live(2, b"b")
        );
    }

    #[test]
    fn expiring_ranks_between_live_and_tombstone() {
        let exp = |ts, v: &'static [u8], at| Cell {
            column: 1,
            path: None,
            timestamp: ts,
            value: CellValue::Live {
                value: Bytes::from_static(v),
                ttl: Some(Ttl {
                    ttl: 10,
                    local_expiration_time: at,
                }),
            },
        };
        assert_eq!(
            reconcile_cells(live(2, b"z"), exp(2, b"a", 5)),
            exp(2, b"a", 5)
        );
        assert_eq!(reconcile_cells(exp(2, b"a", 5), tomb(2)), tomb(2));
        assert_eq!(
            reconcile_cells(exp(2, b"z", 5), exp(2, b"a", 6)),
            exp(2, b"a", 6)
        );
        assert_eq!(
            reconcile_cells(exp(2, b"a", 6), exp(2, b"b", 6)),
            exp(2, b"b", 6)
        );
        assert_eq!(reconcile_cells(exp(3, b"a", 6), tomb(2)), exp(3, b"a", 6));
    }

    #[test]
    fn counters_sum() {
        let c = |ts, v| Cell {
            column: 1,
            path: None,
            timestamp: ts,
            value: CellValue::Counter { value: v },
        };
        assert_eq!(reconcile_cells(c(1, 5), c(3, -2)), c(3, 3));
        assert_eq!(reconcile_cells(c(1, 5), c(1, 5)), c(1, 10));
        assert_eq!(reconcile_cells(c(1, 5), tomb(2)), tomb(2));
    }

    #[test]
    fn ttl_expiry() {
        let mut c = live(1, b"a");
        c.value = CellValue::Live {
            value: Bytes::from_static(b"a"),
            ttl: Some(Ttl {
                ttl: 10,
                local_expiration_time: 100,
            }),
        };
        assert!(cell_live(&c, 99));
        assert!(!cell_live(&c, 100));
        assert!(!cell_live(&tomb(1), 0));
    }

    #[test]
    fn liveness_rules() {
        let l = |ts, exp: Option<i32>| LivenessInfo {
            timestamp: ts,
            ttl: exp.map(|e| Ttl {
                ttl: 1,
                local_expiration_time: e,
            }),
        };
        assert!(liveness_supersedes(&l(2, None), &l(1, Some(5))));
        assert!(liveness_supersedes(&l(1, Some(5)), &l(1, None)));
        assert!(liveness_supersedes(&l(1, Some(6)), &l(1, Some(5))));
        assert!(!liveness_supersedes(&l(1, None), &l(1, None)));
    }

    #[test]
    fn bounds_prefix_semantics() {
        let b = |p: &'static [u8], inc| ClusteringBound {
            prefix: Bytes::from_static(p),
            inclusive: inc,
        };
        assert!(start_admits(&b(b"ab", true), b"ab"));
        assert!(start_admits(&b(b"ab", true), b"abc"));
        assert!(!start_admits(&b(b"ab", true), b"aa"));
        assert!(!start_admits(&b(b"ab", false), b"abc"));
        assert!(!start_admits(&b(b"ab", false), b"ab"));
        assert!(start_admits(&b(b"ab", false), b"ac"));
        assert!(end_admits(&b(b"ab", true), b"abc"));
        assert!(end_admits(&b(b"ab", true), b"aa"));
        assert!(!end_admits(&b(b"ab", true), b"ac"));
        assert!(!end_admits(&b(b"ab", false), b"ab"));
        assert!(!end_admits(&b(b"ab", false), b"abc"));
        assert!(end_admits(&b(b"ab", false), b"aa"));
        assert!(start_admits(&b(b"", false), b""));
        assert!(end_admits(&b(b"", false), b"zz"));
        assert_eq!(prefix_successor(b"a\xff\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_successor(b"\xff"), None);
    }

    #[test]
    fn row_merge_keeps_strongest() {
        let mut r = Row {
            cells: vec![live(1, b"a")],
            deletion: Some(DeletionTime {
                marked_for_delete_at: 1,
                local_deletion_time: 1,
            }),
            ..Row::default()
        };
        merge_row(
            &mut r,
            Row {
                cells: vec![tomb(1), {
                    let mut c = live(5, b"x");
                    c.column = 2;
                    c
                }],
                deletion: Some(DeletionTime {
                    marked_for_delete_at: 3,
                    local_deletion_time: 0,
                }),
                complex_deletions: vec![(
                    4,
                    DeletionTime {
                        marked_for_delete_at: 2,
                        local_deletion_time: 0,
                    },
                )],
                ..Row::default()
            },
        );
        assert_eq!(r.cells.len(), 2);
        assert_eq!(r.cells[0], tomb(1));
        assert_eq!(r.deletion.unwrap().marked_for_delete_at, 3);
        assert_eq!(r.complex_deletions.len(), 1);
    }
}
