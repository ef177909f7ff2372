//! Convergence of the user schema across nodes.
//!
//! Every keyspace, table and user type is a last-writer-wins register keyed by its name:
//! it holds the definition and the timestamp (µs) of its last change, or a tombstone with
//! the timestamp of its drop. Indexes travel inside their table's definition, so creating
//! or dropping an index is a change of the table. [`SchemaState::merge`] keeps, per
//! register, the entry with the newest timestamp; equal timestamps are broken by a tombstone
//! winning, then by the larger digest of the definition. That is a join on a total order,
//! so the merge is commutative, associative and idempotent: nodes that exchanged their
//! states in any order end with the same state, hence the same schema and version.
//!
//! Registers are independent: a table whose keyspace is dropped stays in the state (a
//! concurrent CREATE TABLE may be newer than the DROP KEYSPACE) but is not part of the
//! schema while its keyspace is not live ([`SchemaState::materialize`]). Deciding that in the
//! materialization, not in the merge, is what keeps the merge associative.
//!
//! Tombstones are dropped [`TOMBSTONE_GRACE_MICROS`] after their drop
//! ([`SchemaState::expire`]), like Cassandra's gc_grace: a node away for longer can bring a
//! dropped object back.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{KeyspaceDef, TableDef};
use crate::types::UdtDef;

/// How long a drop is remembered: 7 days, in µs.
pub const TOMBSTONE_GRACE_MICROS: i64 = 7 * 24 * 3600 * 1_000_000;

/// One register: the live definition or the drop.
#[derive(Clone, Debug, PartialEq)]
pub enum Entry<T> {
    Live { ts: i64, def: T },
    Dead { ts: i64 },
}

impl<T> Entry<T> {
    pub fn ts(&self) -> i64 {
        match self {
            Entry::Live { ts, .. } | Entry::Dead { ts } => *ts,
        }
    }

    pub fn live(&self) -> Option<&T> {
        match self {
            Entry::Live { def, .. } => Some(def),
            Entry::Dead { .. } => None,
        }
    }
}

/// The user schema with its history: what nodes exchange and persist.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SchemaState {
    /// Keyspace properties; `tables` and `types` of these defs are always empty.
    pub keyspaces: BTreeMap<String, Entry<Arc<KeyspaceDef>>>,
    /// (keyspace, table) → table.
    pub tables: BTreeMap<(String, String), Entry<Arc<TableDef>>>,
    /// (keyspace, type) → type.
    pub types: BTreeMap<(String, String), Entry<Arc<UdtDef>>>,
}

/// Definitions that can break a timestamp tie by digest.
pub trait Digestible {
    fn digest(&self) -> [u8; 16];
}

impl Digestible for Arc<KeyspaceDef> {
    fn digest(&self) -> [u8; 16] {
        super::persist::keyspace_props_digest(self)
    }
}

impl Digestible for Arc<TableDef> {
    fn digest(&self) -> [u8; 16] {
        super::persist::table_digest(self)
    }
}

impl Digestible for Arc<UdtDef> {
    fn digest(&self) -> [u8; 16] {
        super::persist::udt_digest(self)
    }
}

/// The newer of two entries of one register (the join).
fn newer<T: Digestible + Clone + PartialEq>(a: &Entry<T>, b: &Entry<T>) -> Entry<T> {
    use std::cmp::Ordering::*;
    match a.ts().cmp(&b.ts()) {
        Greater => a.clone(),
        Less => b.clone(),
        // The common case when nodes agree: no digest to compute (they serialize the whole
        // definition, which dominated merging two equal schemas).
        Equal if a == b => a.clone(),
        // A drop wins a tie: the two changes were concurrent and a drop is what a client
        // may already have been told happened.
        Equal => match (a, b) {
            (Entry::Dead { .. }, _) => a.clone(),
            (_, Entry::Dead { .. }) => b.clone(),
            (Entry::Live { def: da, .. }, Entry::Live { def: db, .. }) => {
                if da.digest() >= db.digest() {
                    a.clone()
                } else {
                    b.clone()
                }
            }
        },
    }
}

fn merge_map<K: Ord + Clone, T: Digestible + Clone + PartialEq>(
    a: &BTreeMap<K, Entry<T>>,
    b: &BTreeMap<K, Entry<T>>,
) -> BTreeMap<K, Entry<T>> {
    let mut out = a.clone();
    for (k, eb) in b {
        let merged = match out.get(k) {
            Some(ea) => newer(ea, eb),
            None => eb.clone(),
        };
        out.insert(k.clone(), merged);
    }
    out
}

fn props_equal(a: &KeyspaceDef, b: &KeyspaceDef) -> bool {
    a.replication == b.replication && a.durable_writes == b.durable_writes
}

/// A keyspace's properties alone, as the state keeps them.
fn props_only(ks: &KeyspaceDef) -> Arc<KeyspaceDef> {
    Arc::new(KeyspaceDef {
        name: ks.name.clone(),
        replication: ks.replication.clone(),
        durable_writes: ks.durable_writes,
        tables: BTreeMap::new(),
        types: BTreeMap::new(),
        is_system: false,
    })
}

impl SchemaState {
    /// The state of a schema without history (format 1 files): every object live at
    /// timestamp 0, so any change made since on any node wins over it.
    pub fn from_keyspaces<'a>(keyspaces: impl Iterator<Item = &'a KeyspaceDef>) -> SchemaState {
        SchemaState::default().apply_local(keyspaces, 0)
    }

    /// Joins two states.
    pub fn merge(&self, other: &SchemaState) -> SchemaState {
        SchemaState {
            keyspaces: merge_map(&self.keyspaces, &other.keyspaces),
            tables: merge_map(&self.tables, &other.tables),
            types: merge_map(&self.types, &other.types),
        }
    }

    /// Forgets tombstones older than the grace period. A local decision, made when a state
    /// is saved: it never changes the schema, only what a long-absent node could undo.
    pub fn expire(&mut self, now_micros: i64) {
        let horizon = now_micros.saturating_sub(TOMBSTONE_GRACE_MICROS);
        let keep = |ts: i64, dead: bool| !dead || ts >= horizon;
        self.keyspaces
            .retain(|_, e| keep(e.ts(), e.live().is_none()));
        self.tables.retain(|_, e| keep(e.ts(), e.live().is_none()));
        self.types.retain(|_, e| keep(e.ts(), e.live().is_none()));
    }

    /// The user keyspaces: live keyspaces with their live tables and types.
    pub fn materialize(&self) -> Vec<KeyspaceDef> {
        let mut out: BTreeMap<&str, KeyspaceDef> = self
            .keyspaces
            .iter()
            .filter_map(|(name, e)| Some((name.as_str(), (**e.live()?).clone())))
            .collect();
        for ((ks, name), e) in &self.tables {
            if let (Some(def), Some(k)) = (e.live(), out.get_mut(ks.as_str())) {
                k.tables.insert(name.clone(), def.clone());
            }
        }
        for ((ks, name), e) in &self.types {
            if let (Some(def), Some(k)) = (e.live(), out.get_mut(ks.as_str())) {
                k.types.insert(name.clone(), def.clone());
            }
        }
        out.into_values().collect()
    }

    /// Records a local schema change: `new` is the whole user schema after it. Every object
    /// that appears or changed becomes live at `ts`, every visible object that disappeared
    /// becomes a tombstone at `ts` (a dropped keyspace's tables and types included). Each
    /// stamp is at least one more than the entry it replaces, so a change always wins over
    /// the state it was made on even if this node's clock is behind the one that wrote it.
    pub fn apply_local<'a>(
        &self,
        new: impl Iterator<Item = &'a KeyspaceDef>,
        ts: i64,
    ) -> SchemaState {
        let new: BTreeMap<&str, &KeyspaceDef> = new.map(|k| (k.name.as_str(), k)).collect();
        let mut out = self.clone();
        let stamp = |prev: Option<i64>| prev.map_or(ts, |p| ts.max(p.saturating_add(1)));
        // A key dies if it is not in `new` but its keyspace is live before or after: that
        // covers DROP TABLE/TYPE, DROP KEYSPACE, and stale definitions left under a keyspace
        // name that is being created again. Tables of keyspaces dead on both sides keep
        // their entry: a newer CREATE KEYSPACE elsewhere may still revive them.
        let was_live = |ks: &str| self.keyspaces.get(ks).and_then(Entry::live).is_some();
        for (name, ks) in &new {
            let prev = self.keyspaces.get(*name);
            let same = prev
                .and_then(Entry::live)
                .is_some_and(|p| props_equal(p, ks));
            if !same {
                out.keyspaces.insert(
                    name.to_string(),
                    Entry::Live {
                        ts: stamp(prev.map(Entry::ts)),
                        def: props_only(ks),
                    },
                );
            }
            for (t, def) in &ks.tables {
                let key = (name.to_string(), t.clone());
                let prev = self.tables.get(&key);
                if prev.and_then(Entry::live) != Some(def) {
                    let ts = stamp(prev.map(Entry::ts));
                    out.tables.insert(
                        key,
                        Entry::Live {
                            ts,
                            def: def.clone(),
                        },
                    );
                }
            }
            for (t, def) in &ks.types {
                let key = (name.to_string(), t.clone());
                let prev = self.types.get(&key);
                if prev.and_then(Entry::live) != Some(def) {
                    let ts = stamp(prev.map(Entry::ts));
                    out.types.insert(
                        key,
                        Entry::Live {
                            ts,
                            def: def.clone(),
                        },
                    );
                }
            }
        }
        for (name, e) in &self.keyspaces {
            if e.live().is_some() && !new.contains_key(name.as_str()) {
                out.keyspaces.insert(
                    name.clone(),
                    Entry::Dead {
                        ts: stamp(Some(e.ts())),
                    },
                );
            }
        }
        let gone = |ks: &str, has: &dyn Fn(&KeyspaceDef) -> bool| {
            let in_new = new.get(ks).is_some_and(|k| has(k));
            !in_new && (was_live(ks) || new.contains_key(ks))
        };
        for ((ks, name), e) in &self.tables {
            if e.live().is_some() && gone(ks, &|k| k.tables.contains_key(name)) {
                out.tables.insert(
                    (ks.clone(), name.clone()),
                    Entry::Dead {
                        ts: stamp(Some(e.ts())),
                    },
                );
            }
        }
        for ((ks, name), e) in &self.types {
            if e.live().is_some() && gone(ks, &|k| k.types.contains_key(name)) {
                out.types.insert(
                    (ks.clone(), name.clone()),
                    Entry::Dead {
                        ts: stamp(Some(e.ts())),
                    },
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::ast::Order;
    use crate::schema::persist::{decode_state, encode_state, schema_digest};
    use crate::schema::{ColumnDef, ColumnKind, TableParams, TableSource};
    use crate::types::CqlType;
    use proptest::prelude::*;

    const KS: [&str; 2] = ["a", "b"];
    const NAMES: [&str; 2] = ["t", "u"];

    /// One DDL statement as its effect on a replica's user schema.
    #[derive(Clone, Debug)]
    enum Op {
        CreateKeyspace(usize, u8),
        DropKeyspace(usize),
        CreateTable(usize, usize, u128),
        AddColumn(usize, usize),
        DropTable(usize, usize),
        CreateType(usize, usize, u8),
        DropType(usize, usize),
    }

    fn table(ks: &str, name: &str, id: u128) -> TableDef {
        TableDef {
            keyspace: ks.into(),
            name: name.into(),
            id: uuid::Uuid::from_u128(id),
            columns: vec![ColumnDef {
                name: "k".into(),
                ty: CqlType::Int,
                kind: ColumnKind::PartitionKey,
                position: 0,
                order: Order::Asc,
                id: 0,
            }],
            partition_key_len: 1,
            clustering_len: 0,
            params: TableParams::default(),
            is_counter: false,
            indexes: vec![],
            dropped_columns: BTreeMap::new(),
            next_column_id: 1,
            source: TableSource::Stored,
        }
    }

    /// Applies `op` to the materialized schema like the DDL statement would (a no-op when
    /// the statement would fail), then records it at `ts`.
    fn run(state: &SchemaState, op: &Op, ts: i64) -> SchemaState {
        let mut user: BTreeMap<String, KeyspaceDef> = state
            .materialize()
            .into_iter()
            .map(|k| (k.name.clone(), k))
            .collect();
        match op {
            Op::CreateKeyspace(k, rf) => {
                user.entry(KS[*k].into()).or_insert_with(|| KeyspaceDef {
                    name: KS[*k].into(),
                    replication: [("replication_factor".to_string(), rf.to_string())].into(),
                    durable_writes: true,
                    tables: BTreeMap::new(),
                    types: BTreeMap::new(),
                    is_system: false,
                });
            }
            Op::DropKeyspace(k) => {
                user.remove(KS[*k]);
            }
            Op::CreateTable(k, t, id) => {
                if let Some(ks) = user.get_mut(KS[*k]) {
                    ks.tables
                        .entry(NAMES[*t].into())
                        .or_insert_with(|| Arc::new(table(KS[*k], NAMES[*t], *id)));
                }
            }
            Op::AddColumn(k, t) => {
                if let Some(def) = user
                    .get_mut(KS[*k])
                    .and_then(|ks| ks.tables.get_mut(NAMES[*t]))
                {
                    let d = Arc::make_mut(def);
                    d.columns.push(ColumnDef {
                        name: format!("c{}", d.next_column_id),
                        ty: CqlType::Text,
                        kind: ColumnKind::Regular,
                        position: -1,
                        order: Order::Asc,
                        id: d.next_column_id,
                    });
                    d.next_column_id += 1;
                }
            }
            Op::DropTable(k, t) => {
                if let Some(ks) = user.get_mut(KS[*k]) {
                    ks.tables.remove(NAMES[*t]);
                }
            }
            Op::CreateType(k, t, f) => {
                if let Some(ks) = user.get_mut(KS[*k]) {
                    ks.types.entry(NAMES[*t].into()).or_insert_with(|| {
                        Arc::new(UdtDef {
                            keyspace: KS[*k].into(),
                            name: NAMES[*t].into(),
                            fields: vec![(format!("f{f}"), CqlType::Int)],
                        })
                    });
                }
            }
            Op::DropType(k, t) => {
                if let Some(ks) = user.get_mut(KS[*k]) {
                    ks.types.remove(NAMES[*t]);
                }
            }
        }
        state.apply_local(user.values(), ts)
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..2usize, 1..3u8).prop_map(|(k, rf)| Op::CreateKeyspace(k, rf)),
            (0..2usize).prop_map(Op::DropKeyspace),
            (0..2usize, 0..2usize, 1..1000u128).prop_map(|(k, t, id)| Op::CreateTable(k, t, id)),
            (0..2usize, 0..2usize).prop_map(|(k, t)| Op::AddColumn(k, t)),
            (0..2usize, 0..2usize).prop_map(|(k, t)| Op::DropTable(k, t)),
            (0..2usize, 0..2usize, 0..3u8).prop_map(|(k, t, f)| Op::CreateType(k, t, f)),
            (0..2usize, 0..2usize).prop_map(|(k, t)| Op::DropType(k, t)),
        ]
    }

    /// A step of the history: replica `r` runs `op` at a timestamp drawn from a small range
    /// (so replicas tie), or replica `r` merges what replica `from` has.
    #[derive(Clone, Debug)]
    enum Step {
        Ddl { r: usize, op: Op, ts: i64 },
        Exchange { r: usize, from: usize },
    }

    fn step(n: usize) -> impl Strategy<Value = Step> {
        prop_oneof![
            3 => (0..n, op(), 1..40i64).prop_map(|(r, op, ts)| Step::Ddl { r, op, ts }),
            1 => (0..n, 0..n).prop_map(|(r, from)| Step::Exchange { r, from }),
        ]
    }

    fn history() -> impl Strategy<Value = (usize, Vec<Step>, Vec<usize>, Vec<usize>)> {
        (2..=3usize).prop_flat_map(|n| {
            (
                Just(n),
                proptest::collection::vec(step(n), 1..40),
                Just((0..n).collect::<Vec<_>>()).prop_shuffle(),
                Just((0..n).collect::<Vec<_>>()).prop_shuffle(),
            )
        })
    }

    fn version(s: &SchemaState) -> uuid::Uuid {
        schema_digest(s.materialize().iter())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Replicas that ran random DDL and exchanged in random orders end with the same
        /// state, schema and version once each has merged everyone's.
        #[test]
        fn replicas_converge((n, steps, order_a, order_b) in history()) {
            let mut replicas = vec![SchemaState::default(); n];
            for s in &steps {
                match s {
                    Step::Ddl { r, op, ts } => replicas[*r] = run(&replicas[*r], op, *ts),
                    Step::Exchange { r, from } => {
                        replicas[*r] = replicas[*r].merge(&replicas[*from])
                    }
                }
            }
            // Two different gossip orders: a chain in one order, pairwise in another.
            let mut chain = replicas[order_a[0]].clone();
            for &i in &order_a[1..] {
                chain = chain.merge(&replicas[i]);
            }
            let mut finals = Vec::new();
            for &i in &order_b {
                let mut s = replicas[i].clone();
                for &j in order_b.iter().rev() {
                    s = replicas[j].merge(&s);
                }
                finals.push(s);
            }
            for f in &finals {
                prop_assert_eq!(f, &chain);
                prop_assert_eq!(version(f), version(&chain));
                prop_assert_eq!(f.materialize(), chain.materialize());
            }
            // Through the encoding nodes exchange, too.
            let decoded = decode_state(&encode_state(&chain)).unwrap();
            prop_assert_eq!(&decoded, &chain);
        }

        /// The merge is a join: commutative, associative, idempotent.
        #[test]
        fn merge_is_a_join((n, steps, _, _) in history()) {
            let mut replicas = vec![SchemaState::default(); n.max(3)];
            for s in &steps {
                if let Step::Ddl { r, op, ts } = s {
                    replicas[*r] = run(&replicas[*r], op, *ts);
                }
            }
            let (a, b, c) = (&replicas[0], &replicas[1], &replicas[2]);
            prop_assert_eq!(a.merge(b), b.merge(a));
            prop_assert_eq!(a.merge(&b.merge(c)), a.merge(b).merge(c));
            prop_assert_eq!(a.merge(a), a.clone());
        }
    }

    #[test]
    fn a_local_change_wins_over_the_state_it_was_made_on() {
        let s = run(&SchemaState::default(), &Op::CreateKeyspace(0, 1), 100);
        // This node's clock is behind: the drop still gets a newer stamp.
        let dropped = run(&s, &Op::DropKeyspace(0), 5);
        assert!(dropped.materialize().is_empty());
        assert!(s.merge(&dropped).materialize().is_empty());
    }

    #[test]
    fn recreating_a_keyspace_does_not_revive_its_old_tables() {
        let s = run(&SchemaState::default(), &Op::CreateKeyspace(0, 1), 1);
        let s = run(&s, &Op::CreateTable(0, 0, 7), 2);
        // Elsewhere: the keyspace is dropped; here, concurrently, a table is created in it.
        let elsewhere = run(&s, &Op::DropKeyspace(0), 3);
        let here = run(&s, &Op::CreateTable(0, 1, 8), 4);
        let merged = elsewhere.merge(&here);
        // The keyspace is gone; the newer table is kept, invisible, in case it comes back.
        assert!(merged.materialize().is_empty());
        assert!(merged.tables[&("a".into(), "u".into())].live().is_some());
        let again = run(&merged, &Op::CreateKeyspace(0, 2), 5);
        assert!(again.materialize()[0].tables.is_empty());
    }

    #[test]
    fn tombstones_expire_after_the_grace_period() {
        let s = run(&SchemaState::default(), &Op::CreateKeyspace(0, 1), 1);
        let mut s = run(&s, &Op::DropKeyspace(0), 10);
        s.expire(10 + TOMBSTONE_GRACE_MICROS);
        assert_eq!(s.keyspaces.len(), 1);
        s.expire(11 + TOMBSTONE_GRACE_MICROS);
        assert!(s.keyspaces.is_empty());
    }
}
