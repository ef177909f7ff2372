//! The rows of one partition, keyed and ordered by clustering key.
//!
//! Most partitions hold one row (every table without clustering columns) or a handful. A
//! `BTreeMap` spends a whole leaf node (eleven slots, about 1.8 KB for our `Row`) on even
//! one row, which made an in-memory standard1 partition cost 3.8 times what the memtable
//! accounted for and every partition compaction merged cost a 1.8 KB allocation. Small
//! partitions therefore live in a sorted vector grown one slot at a time; a partition that
//! outgrows [`SMALL_MAX`] rows moves to a `BTreeMap`, so random-order inserts into a wide
//! partition stay logarithmic.

use std::collections::BTreeMap;
use std::collections::btree_map;
use std::ops::Bound;

use bytes::Bytes;

use crate::model::Row;

/// Rows a partition keeps in its sorted vector before it moves to a tree.
pub const SMALL_MAX: usize = 16;

#[derive(Clone, Debug)]
enum Repr {
    /// Sorted by `clustering`, unique.
    Small(Vec<Row>),
    Large(BTreeMap<Bytes, Row>),
}

/// An ordered map from clustering key to row; the key is the row's own `clustering`.
#[derive(Clone, Debug)]
pub struct RowMap(Repr);

impl Default for RowMap {
    fn default() -> Self {
        RowMap(Repr::Small(Vec::new()))
    }
}

impl PartialEq for RowMap {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.values().eq(other.values())
    }
}

impl Eq for RowMap {}

impl RowMap {
    pub fn new() -> RowMap {
        RowMap::default()
    }

    pub fn len(&self) -> usize {
        match &self.0 {
            Repr::Small(v) => v.len(),
            Repr::Large(m) => m.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, clustering: &[u8]) -> Option<&Row> {
        match &self.0 {
            Repr::Small(v) => v
                .binary_search_by(|r| r.clustering[..].cmp(clustering))
                .ok()
                .map(|i| &v[i]),
            Repr::Large(m) => m.get(clustering),
        }
    }

    pub fn get_mut(&mut self, clustering: &[u8]) -> Option<&mut Row> {
        match &mut self.0 {
            Repr::Small(v) => match v.binary_search_by(|r| r.clustering[..].cmp(clustering)) {
                Ok(i) => Some(&mut v[i]),
                Err(_) => None,
            },
            Repr::Large(m) => m.get_mut(clustering),
        }
    }

    /// Inserts `row` under its clustering key, returning the row it replaces.
    pub fn insert(&mut self, row: Row) -> Option<Row> {
        match &mut self.0 {
            Repr::Small(v) => {
                // Appending in order (flushes, SSTable reads, time series) skips the search.
                let at = match v.last() {
                    Some(last) if last.clustering < row.clustering => Err(v.len()),
                    None => Err(0),
                    _ => v.binary_search_by(|r| r.clustering.cmp(&row.clustering)),
                };
                match at {
                    Ok(i) => Some(std::mem::replace(&mut v[i], row)),
                    Err(i) if v.len() < SMALL_MAX => {
                        if v.len() == v.capacity() {
                            // Doubling from one: a one-row partition holds exactly one slot.
                            v.reserve_exact(v.len().max(1));
                        }
                        v.insert(i, row);
                        None
                    }
                    Err(_) => {
                        let mut m: BTreeMap<Bytes, Row> = std::mem::take(v)
                            .into_iter()
                            .map(|r| (r.clustering.clone(), r))
                            .collect();
                        m.insert(row.clustering.clone(), row);
                        self.0 = Repr::Large(m);
                        None
                    }
                }
            }
            Repr::Large(m) => m.insert(row.clustering.clone(), row),
        }
    }

    /// Rows in clustering order.
    pub fn values(&self) -> Values<'_> {
        match &self.0 {
            Repr::Small(v) => Values::Small(v.iter()),
            Repr::Large(m) => Values::Large(m.values()),
        }
    }

    /// Rows with `lower <= clustering` and `clustering </<= upper` per the bounds, in order.
    /// An inverted range is empty.
    pub fn range<'a>(&'a self, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> Values<'a> {
        if let (Bound::Included(l) | Bound::Excluded(l), Bound::Included(u) | Bound::Excluded(u)) =
            (lower, upper)
            && (l > u
                || (l == u && !matches!((lower, upper), (Bound::Included(_), Bound::Included(_)))))
        {
            return Values::Small([].iter());
        }
        match &self.0 {
            Repr::Small(v) => {
                let start = match lower {
                    Bound::Unbounded => 0,
                    Bound::Included(l) => v.partition_point(|r| &r.clustering[..] < l),
                    Bound::Excluded(l) => v.partition_point(|r| &r.clustering[..] <= l),
                };
                let end = match upper {
                    Bound::Unbounded => v.len(),
                    Bound::Included(u) => v.partition_point(|r| &r.clustering[..] <= u),
                    Bound::Excluded(u) => v.partition_point(|r| &r.clustering[..] < u),
                };
                Values::Small(v[start..end.max(start)].iter())
            }
            Repr::Large(m) => Values::LargeRange(m.range::<[u8], _>((lower, upper))),
        }
    }

    /// Keeps the rows for which `keep` says so.
    pub fn retain(&mut self, mut keep: impl FnMut(&mut Row) -> bool) {
        match &mut self.0 {
            Repr::Small(v) => v.retain_mut(|r| keep(r)),
            Repr::Large(m) => m.retain(|_, r| keep(r)),
        }
    }
}

impl std::ops::Index<&[u8]> for RowMap {
    type Output = Row;

    fn index(&self, clustering: &[u8]) -> &Row {
        self.get(clustering)
            .expect("no row with that clustering key")
    }
}

impl IntoIterator for RowMap {
    type Item = Row;
    type IntoIter = IntoValues;

    fn into_iter(self) -> IntoValues {
        match self.0 {
            Repr::Small(v) => IntoValues::Small(v.into_iter()),
            Repr::Large(m) => IntoValues::Large(m.into_values()),
        }
    }
}

impl FromIterator<Row> for RowMap {
    fn from_iter<I: IntoIterator<Item = Row>>(iter: I) -> Self {
        let mut m = RowMap::new();
        for r in iter {
            m.insert(r);
        }
        m
    }
}

/// Borrowed rows in clustering order (reversible).
pub enum Values<'a> {
    Small(std::slice::Iter<'a, Row>),
    Large(btree_map::Values<'a, Bytes, Row>),
    LargeRange(btree_map::Range<'a, Bytes, Row>),
}

impl<'a> Iterator for Values<'a> {
    type Item = &'a Row;

    fn next(&mut self) -> Option<&'a Row> {
        match self {
            Values::Small(i) => i.next(),
            Values::Large(i) => i.next(),
            Values::LargeRange(i) => i.next().map(|(_, r)| r),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            Values::Small(i) => i.size_hint(),
            Values::Large(i) => i.size_hint(),
            Values::LargeRange(i) => i.size_hint(),
        }
    }
}

impl DoubleEndedIterator for Values<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        match self {
            Values::Small(i) => i.next_back(),
            Values::Large(i) => i.next_back(),
            Values::LargeRange(i) => i.next_back().map(|(_, r)| r),
        }
    }
}

/// Owned rows in clustering order.
pub enum IntoValues {
    Small(std::vec::IntoIter<Row>),
    Large(btree_map::IntoValues<Bytes, Row>),
}

impl Iterator for IntoValues {
    type Item = Row;

    fn next(&mut self) -> Option<Row> {
        match self {
            IntoValues::Small(i) => i.next(),
            IntoValues::Large(i) => i.next(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn row(k: u8) -> Row {
        Row {
            clustering: Bytes::from(vec![k]),
            liveness: None,
            deletion: None,
            complex_deletions: Vec::new(),
            cells: Vec::new(),
        }
    }

    fn bound(kind: u8, k: u8) -> Bound<Vec<u8>> {
        match kind % 3 {
            0 => Bound::Unbounded,
            1 => Bound::Included(vec![k]),
            _ => Bound::Excluded(vec![k]),
        }
    }

    fn as_ref(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
        match b {
            Bound::Unbounded => Bound::Unbounded,
            Bound::Included(v) => Bound::Included(&v[..]),
            Bound::Excluded(v) => Bound::Excluded(&v[..]),
        }
    }

    proptest! {
        /// Every operation agrees with a `BTreeMap` model, across the move to a tree.
        #[test]
        fn agrees_with_btreemap(
            keys in proptest::collection::vec(0u8..40, 0..60),
            removals in proptest::collection::vec(0u8..40, 0..10),
            (lk, l, uk, u) in (0u8..3, 0u8..40, 0u8..3, 0u8..40),
        ) {
            let mut m = RowMap::new();
            let mut model = BTreeMap::new();
            for k in keys {
                prop_assert_eq!(m.insert(row(k)).is_some(), model.insert(vec![k], row(k)).is_some());
                prop_assert_eq!(m.len(), model.len());
            }
            m.retain(|r| !removals.contains(&r.clustering[0]));
            model.retain(|k, _| !removals.contains(&k[0]));
            prop_assert!(m.values().eq(model.values()));
            prop_assert!(m.values().rev().eq(model.values().rev()));
            prop_assert!(m.clone().into_iter().eq(model.values().cloned()));
            for k in 0..40u8 {
                prop_assert_eq!(m.get(&[k]), model.get(&vec![k]));
            }
            let (lo, hi) = (bound(lk, l), bound(uk, u));
            let inverted = match (&lo, &hi) {
                (Bound::Included(a) | Bound::Excluded(a), Bound::Included(b) | Bound::Excluded(b)) =>
                    a > b || (a == b && !matches!((&lo, &hi), (Bound::Included(_), Bound::Included(_)))),
                _ => false,
            };
            let want: Vec<&Row> = if inverted {
                Vec::new()
            } else {
                model.range::<[u8], _>((as_ref(&lo), as_ref(&hi))).map(|(_, r)| r).collect()
            };
            prop_assert_eq!(m.range(as_ref(&lo), as_ref(&hi)).collect::<Vec<_>>(), want.clone());
            prop_assert_eq!(
                m.range(as_ref(&lo), as_ref(&hi)).rev().collect::<Vec<_>>(),
                want.into_iter().rev().collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn one_row_holds_one_slot() {
        let mut m = RowMap::new();
        m.insert(row(1));
        match &m.0 {
            Repr::Small(v) => assert_eq!(v.capacity(), 1),
            Repr::Large(_) => panic!("one row is small"),
        }
    }
}
