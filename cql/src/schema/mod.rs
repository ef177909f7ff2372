//! The schema: keyspaces, tables, columns, user types and indexes, how it is persisted,
//! and the views of it clients read (system_schema rows, DESCRIBE).
//!
//! The schema is an immutable snapshot (`Arc<Schema>`) swapped on every DDL, so readers
//! never lock: a statement resolves names against the snapshot it started with.

pub mod describe;
pub mod merge;
pub mod persist;
pub mod rows;
pub mod system;

use std::collections::BTreeMap;
use std::sync::Arc;

use shoal_engine::{ColumnId, TableId};
use uuid::Uuid;

use crate::parser::ast::Order;
use crate::types::{CqlType, UdtDef};

/// A column's role in its table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ColumnKind {
    PartitionKey,
    Clustering,
    Static,
    Regular,
}

impl ColumnKind {
    /// The value of system_schema.columns.kind.
    pub fn as_str(self) -> &'static str {
        match self {
            ColumnKind::PartitionKey => "partition_key",
            ColumnKind::Clustering => "clustering",
            ColumnKind::Static => "static",
            ColumnKind::Regular => "regular",
        }
    }
}

/// One column.
#[derive(Clone, Debug, PartialEq)]
pub struct ColumnDef {
    pub name: String,
    pub ty: CqlType,
    pub kind: ColumnKind,
    /// Position within the partition key or clustering key; -1 for regular and static.
    pub position: i32,
    /// Clustering order (clustering columns only; `Asc` otherwise).
    pub order: Order,
    /// Stable id of the column's cells in the engine; never reused within a table.
    pub id: ColumnId,
}

impl ColumnDef {
    pub fn is_primary_key(&self) -> bool {
        matches!(self.kind, ColumnKind::PartitionKey | ColumnKind::Clustering)
    }

    /// system_schema.columns.clustering_order
    pub fn clustering_order_str(&self) -> &'static str {
        match (self.kind, self.order) {
            (ColumnKind::Clustering, Order::Asc) => "asc",
            (ColumnKind::Clustering, Order::Desc) => "desc",
            _ => "none",
        }
    }
}

/// Table options, with Cassandra 4's defaults. Maps hold values as Cassandra shows them.
#[derive(Clone, Debug, PartialEq)]
pub struct TableParams {
    pub additional_write_policy: String,
    pub bloom_filter_fp_chance: f64,
    pub caching: BTreeMap<String, String>,
    pub cdc: bool,
    pub comment: String,
    pub compaction: BTreeMap<String, String>,
    pub compression: BTreeMap<String, String>,
    pub crc_check_chance: f64,
    pub default_time_to_live: i32,
    pub extensions: BTreeMap<String, Vec<u8>>,
    pub gc_grace_seconds: i32,
    pub max_index_interval: i32,
    pub memtable_flush_period_in_ms: i32,
    pub min_index_interval: i32,
    pub read_repair: String,
    pub speculative_retry: String,
}

impl Default for TableParams {
    fn default() -> Self {
        let map = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>()
        };
        TableParams {
            additional_write_policy: "99p".into(),
            bloom_filter_fp_chance: 0.01,
            caching: map(&[("keys", "ALL"), ("rows_per_partition", "NONE")]),
            cdc: false,
            comment: String::new(),
            compaction: map(&[
                (
                    "class",
                    "org.apache.cassandra.db.compaction.SizeTieredCompactionStrategy",
                ),
                ("max_threshold", "32"),
                ("min_threshold", "4"),
            ]),
            compression: map(&[
                ("chunk_length_in_kb", "16"),
                ("class", "org.apache.cassandra.io.compress.LZ4Compressor"),
            ]),
            crc_check_chance: 1.0,
            default_time_to_live: 0,
            extensions: BTreeMap::new(),
            gc_grace_seconds: 864_000,
            max_index_interval: 2048,
            memtable_flush_period_in_ms: 0,
            min_index_interval: 128,
            read_repair: "BLOCKING".into(),
            speculative_retry: "99p".into(),
        }
    }
}

/// A secondary index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexDef {
    pub name: String,
    /// `COMPOSITES`, `KEYS` or `CUSTOM`.
    pub kind: String,
    /// Includes `target` (e.g. `v`, `values(l)`, `keys(m)`) and `class_name` for custom.
    pub options: BTreeMap<String, String>,
}

/// Where a table's rows come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableSource {
    /// Stored in the engine.
    Stored,
    /// Computed on read by the node (system.local, system_schema.*, ...).
    Virtual,
}

/// A table.
#[derive(Clone, Debug, PartialEq)]
pub struct TableDef {
    pub keyspace: String,
    pub name: String,
    pub id: Uuid,
    /// Partition key columns (by position), clustering columns (by position), then static
    /// and regular columns sorted by name, as Cassandra lists them.
    pub columns: Vec<ColumnDef>,
    pub partition_key_len: usize,
    pub clustering_len: usize,
    pub params: TableParams,
    /// Counter table (every non-key column is a counter).
    pub is_counter: bool,
    pub indexes: Vec<IndexDef>,
    /// Dropped columns: name → (type, drop time in µs). Their ids are never reused.
    pub dropped_columns: BTreeMap<String, (CqlType, i64)>,
    /// The next column id to hand out.
    pub next_column_id: ColumnId,
    pub source: TableSource,
}

impl TableDef {
    pub fn engine_id(&self) -> TableId {
        TableId(*self.id.as_bytes())
    }

    pub fn column(&self, name: &str) -> Option<&ColumnDef> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The column or Cassandra's error for an unknown one.
    pub fn column_or_err(&self, name: &str) -> crate::error::CqlResult<&ColumnDef> {
        self.column(name).ok_or_else(|| self.undefined(name))
    }

    /// The index of the column or Cassandra's error for an unknown one.
    pub fn column_index_or_err(&self, name: &str) -> crate::error::CqlResult<usize> {
        self.column_index(name).ok_or_else(|| self.undefined(name))
    }

    fn undefined(&self, name: &str) -> crate::error::CqlError {
        crate::error::CqlError::Invalid(format!(
            "Undefined column name {} in table {}.{}",
            crate::schema::describe::maybe_quote(name),
            self.keyspace,
            self.name
        ))
    }

    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    pub fn partition_key(&self) -> &[ColumnDef] {
        &self.columns[..self.partition_key_len]
    }

    pub fn clustering(&self) -> &[ColumnDef] {
        &self.columns[self.partition_key_len..self.partition_key_len + self.clustering_len]
    }

    /// Static and regular columns.
    pub fn non_key_columns(&self) -> &[ColumnDef] {
        &self.columns[self.partition_key_len + self.clustering_len..]
    }

    pub fn has_static(&self) -> bool {
        self.non_key_columns()
            .iter()
            .any(|c| c.kind == ColumnKind::Static)
    }

    /// The system_schema.tables.flags set.
    pub fn flags(&self) -> Vec<&'static str> {
        if self.is_counter {
            vec!["compound", "counter"]
        } else {
            vec!["compound"]
        }
    }

    /// Clustering component types with their DESC flag, for the byte-comparable encoding.
    pub fn clustering_types(&self) -> Vec<(CqlType, bool)> {
        self.clustering()
            .iter()
            .map(|c| (c.ty.clone(), c.order == Order::Desc))
            .collect()
    }

    /// Builds the column list in Cassandra's order (the order of `SELECT *`): partition key
    /// and clustering columns by position, then static columns by name, then regular
    /// columns by name (DESCRIBE orders differently: see `describe::create_order`).
    pub fn sort_columns(columns: &mut [ColumnDef]) {
        columns.sort_by(|a, b| {
            let key = |c: &ColumnDef| match c.kind {
                ColumnKind::PartitionKey => 0,
                ColumnKind::Clustering => 1,
                ColumnKind::Static => 2,
                ColumnKind::Regular => 3,
            };
            key(a).cmp(&key(b)).then_with(|| match a.kind {
                ColumnKind::PartitionKey | ColumnKind::Clustering => a.position.cmp(&b.position),
                _ => {
                    a.ty.is_multicell()
                        .cmp(&b.ty.is_multicell())
                        .then_with(|| a.name.as_bytes().cmp(b.name.as_bytes()))
                }
            })
        });
    }
}

/// A keyspace.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyspaceDef {
    pub name: String,
    /// Includes `class` with the full class name, e.g.
    /// `org.apache.cassandra.locator.SimpleStrategy`, and the strategy's options.
    pub replication: BTreeMap<String, String>,
    pub durable_writes: bool,
    pub tables: BTreeMap<String, Arc<TableDef>>,
    pub types: BTreeMap<String, Arc<UdtDef>>,
    /// Built-in keyspace (system, system_schema, ...): cannot be altered or dropped.
    pub is_system: bool,
}

/// An immutable schema snapshot.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Schema {
    pub keyspaces: BTreeMap<String, Arc<KeyspaceDef>>,
    /// Digest of the user schema: equal on every node that has the same schema.
    pub version: Uuid,
    /// Stored tables by engine id, for the write and read paths that start from a
    /// mutation or command. Rebuilt by [`Schema::reindex`] whenever keyspaces change.
    pub by_engine_id: std::collections::HashMap<TableId, Arc<TableDef>>,
    /// The user schema with its change timestamps and drops: what is persisted and
    /// exchanged between nodes. The user keyspaces above are its materialization.
    pub state: Arc<merge::SchemaState>,
}

impl Schema {
    pub fn keyspace(&self, name: &str) -> Option<&Arc<KeyspaceDef>> {
        self.keyspaces.get(name)
    }

    pub fn table(&self, keyspace: &str, name: &str) -> Option<&Arc<TableDef>> {
        self.keyspaces.get(keyspace)?.tables.get(name)
    }

    /// The stored table with this engine id (index tables are not listed).
    pub fn table_by_engine_id(&self, id: TableId) -> Option<&Arc<TableDef>> {
        self.by_engine_id.get(&id)
    }

    /// Rebuilds [`Schema::by_engine_id`] after `keyspaces` changed.
    pub fn reindex(&mut self) {
        self.by_engine_id = self
            .stored_tables()
            .map(|t| (t.engine_id(), t.clone()))
            .collect();
    }

    /// Every stored (non-virtual) table, for opening the engine.
    pub fn stored_tables(&self) -> impl Iterator<Item = &Arc<TableDef>> {
        self.keyspaces
            .values()
            .flat_map(|ks| ks.tables.values())
            .filter(|t| t.source == TableSource::Stored)
    }
}

/// Names of the keyspaces Cassandra treats as system keyspaces (cqlsh hides them in
/// DESCRIBE SCHEMA without FULL).
pub const SYSTEM_KEYSPACES: &[&str] = &[
    "system",
    "system_schema",
    "system_auth",
    "system_distributed",
    "system_traces",
    "system_views",
    "system_virtual_schema",
];

pub fn is_system_keyspace(name: &str) -> bool {
    SYSTEM_KEYSPACES.contains(&name)
}
