//! Secondary indexes: one hidden engine table per index whose partitions are the indexed
//! values and whose rows point at base rows (token, partition key, clustering).
//!
//! Entries are maintained by [`apply_indexed`] around every write to an indexed table: the
//! touched rows are read before and after the write (under a per-partition lock, so two
//! writers cannot interleave their read/write/read), and the difference becomes index
//! mutations. Readers re-check every hit against the base row, so an entry left stale by a
//! crash between the two writes is skipped, as Cassandra does.

use std::collections::BTreeSet;
use std::sync::Arc;

use bytes::Bytes;
use shoal_engine::{
    CellValue, ClusteringBound, ClusteringRange, DeletionTime, LivenessInfo, Mutation,
    PartitionData, PartitionPosition, PartitionRange, ReadCommand, Row, TableId, TableOptions, Ttl,
};
use shoal_gossip::partitioner;

use super::restrictions::{Filter, Partitions, Where};
use super::{Executor, engine_error, now_seconds, value};
use crate::error::{CqlError, CqlResult};
use crate::parser::ast::{CreateIndexStatement, IndexTargetKind, Operator, QualifiedName};
use crate::protocol::SchemaChange;
use crate::schema::{ColumnKind, IndexDef, Schema, TableDef};
use crate::types::{CqlType, codec};

/// Lock stripes serialising index maintenance per partition.
pub const STRIPES: usize = 64;

/// What an index covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// Index into `TableDef::columns`.
    pub column: usize,
    pub kind: IndexTargetKind,
}

/// The `target` option text Cassandra stores: `v`, `values(l)`, `keys(m)`, `entries(m)`,
/// `full(f)`, with the column name quoted when needed.
pub fn target_text(column: &str, kind: IndexTargetKind) -> String {
    let name = crate::schema::describe::maybe_quote(column);
    match kind {
        IndexTargetKind::Simple => name,
        IndexTargetKind::Values => format!("values({name})"),
        IndexTargetKind::Keys => format!("keys({name})"),
        IndexTargetKind::Entries => format!("entries({name})"),
        IndexTargetKind::Full => format!("full({name})"),
    }
}

fn unquote(s: &str) -> String {
    match s.strip_prefix('"').and_then(|x| x.strip_suffix('"')) {
        Some(inner) => inner.replace("\"\"", "\""),
        None => s.to_string(),
    }
}

/// Parses an index's `target` option against its table.
pub fn target(table: &TableDef, index: &IndexDef) -> Option<Target> {
    if index.kind == "CUSTOM" {
        return None;
    }
    let t = index.options.get("target")?;
    let (kind, name) = [
        ("values(", IndexTargetKind::Values),
        ("keys(", IndexTargetKind::Keys),
        ("entries(", IndexTargetKind::Entries),
        ("full(", IndexTargetKind::Full),
    ]
    .iter()
    .find_map(|(p, k)| {
        t.strip_prefix(p)
            .and_then(|r| r.strip_suffix(')'))
            .map(|n| (*k, n.to_string()))
    })
    .unwrap_or((IndexTargetKind::Simple, t.clone()));
    let column = table.column_index(&unquote(&name))?;
    Some(Target { column, kind })
}

/// The engine id of an index's hidden table: derived from the base table id and the index
/// name, so every node and every restart computes the same one.
pub fn table_id(table: &TableDef, index_name: &str) -> TableId {
    use md5::{Digest, Md5};
    let mut h = Md5::new();
    h.update(table.id.as_bytes());
    h.update(b"\0secondary-index\0");
    h.update(index_name.as_bytes());
    let mut id = [0u8; 16];
    id.copy_from_slice(&h.finalize());
    TableId(id)
}

/// The index partition keys for one cell value of the target column.
fn keys_for(ty: &CqlType, kind: IndexTargetKind, value: &[u8]) -> Vec<Bytes> {
    let out: Vec<Bytes> = match (kind, ty) {
        (IndexTargetKind::Simple | IndexTargetKind::Full, _) if !ty.is_multicell() => {
            vec![Bytes::copy_from_slice(value)]
        }
        (
            IndexTargetKind::Simple | IndexTargetKind::Values,
            CqlType::List { .. } | CqlType::Set { .. },
        ) => codec::collection_elements(value, 1)
            .unwrap_or_default()
            .into_iter()
            .map(Bytes::copy_from_slice)
            .collect(),
        (IndexTargetKind::Simple | IndexTargetKind::Values, CqlType::Map { .. }) => {
            codec::collection_elements(value, 2)
                .unwrap_or_default()
                .chunks(2)
                .map(|kv| Bytes::copy_from_slice(kv[1]))
                .collect()
        }
        (IndexTargetKind::Keys, CqlType::Map { .. }) => codec::collection_elements(value, 2)
            .unwrap_or_default()
            .chunks(2)
            .map(|kv| Bytes::copy_from_slice(kv[0]))
            .collect(),
        (IndexTargetKind::Entries, CqlType::Map { .. }) => codec::collection_elements(value, 2)
            .unwrap_or_default()
            .chunks(2)
            .map(|kv| entry_key(kv[0], kv[1]))
            .collect(),
        _ => Vec::new(),
    };
    // An empty value cannot be a partition key.
    out.into_iter().filter(|k| !k.is_empty()).collect()
}

/// The index partition key of a map entry (`entries(m)` indexes).
pub fn entry_key(key: &[u8], value: &[u8]) -> Bytes {
    Bytes::from(partitioner::compose_key(&[key, value]))
}

/// An index row's clustering: the base row's token (sign-flipped so entries sort in ring
/// order), its partition key and, for regular columns, its clustering.
fn entry_clustering(token: i64, key: &[u8], clustering: Option<&[u8]>) -> Bytes {
    let mut out = Vec::with_capacity(13 + key.len());
    out.extend_from_slice(&((token as u64) ^ (1 << 63)).to_be_bytes());
    out.extend_from_slice(&(key.len() as u32).to_be_bytes());
    out.extend_from_slice(key);
    match clustering {
        None => out.push(0),
        Some(c) => {
            out.push(1);
            out.extend_from_slice(c);
        }
    }
    Bytes::from(out)
}

/// A decoded index hit: base token, partition key and clustering (`None`: a static column
/// hit, which selects the whole partition).
pub struct Hit {
    pub token: i64,
    pub key: Bytes,
    pub clustering: Option<Bytes>,
}

pub fn decode_hit(c: &[u8]) -> CqlResult<Hit> {
    let corrupt = || CqlError::server("corrupt secondary index entry");
    if c.len() < 13 {
        return Err(corrupt());
    }
    let token = (u64::from_be_bytes(c[..8].try_into().map_err(|_| corrupt())?) ^ (1 << 63)) as i64;
    let len = u32::from_be_bytes(c[8..12].try_into().map_err(|_| corrupt())?) as usize;
    let rest = &c[12..];
    if rest.len() < len + 1 {
        return Err(corrupt());
    }
    let key = Bytes::copy_from_slice(&rest[..len]);
    let clustering = match rest[len] {
        0 => None,
        _ => Some(Bytes::copy_from_slice(&rest[len + 1..])),
    };
    Ok(Hit {
        token,
        key,
        clustering,
    })
}

/// The value of column `col` in an engine row, with the TTL of a simple cell.
fn column_value(
    table: &TableDef,
    col: usize,
    row: &Row,
) -> CqlResult<Option<(Bytes, Option<Ttl>)>> {
    let def = &table.columns[col];
    let cells: Vec<&shoal_engine::Cell> = row.cells.iter().filter(|c| c.column == def.id).collect();
    if def.ty.is_multicell() {
        return Ok(value::assemble(&def.ty, &cells)?.map(|b| (b, None)));
    }
    Ok(cells.first().and_then(|c| match &c.value {
        CellValue::Live { value, ttl } => Some((value.clone(), *ttl)),
        _ => None,
    }))
}

/// One index entry: (index table, index key, entry clustering) and the TTL to give it.
type Entry = (TableId, Bytes, Bytes);

fn entries(
    table: &TableDef,
    indexes: &[(TableId, Target)],
    p: &PartitionData,
    out: &mut Vec<(Entry, Option<Ttl>)>,
) -> CqlResult<()> {
    for (id, t) in indexes {
        let is_static = table.columns[t.column].kind == ColumnKind::Static;
        let ty = &table.columns[t.column].ty;
        let def = &table.columns[t.column];
        let mut add = |row: &Row, ck: Option<&[u8]>| -> CqlResult<()> {
            let found = match def.kind {
                ColumnKind::PartitionKey => partitioner::split_key(&p.key, table.partition_key_len)
                    .and_then(|parts| {
                        parts
                            .get(def.position as usize)
                            .map(|b| Bytes::copy_from_slice(b))
                    })
                    .map(|b| (b, None)),
                ColumnKind::Clustering => {
                    let parts = crate::types::bytecomp::decode_components(
                        &table.clustering_types(),
                        &row.clustering,
                    )?;
                    parts.get(def.position as usize).cloned().map(|b| (b, None))
                }
                _ => column_value(table, t.column, row)?,
            };
            if let Some((v, ttl)) = found {
                for k in keys_for(ty, t.kind, &v) {
                    out.push(((*id, k, entry_clustering(p.token, &p.key, ck)), ttl));
                }
            }
            Ok(())
        };
        if is_static {
            if let Some(s) = &p.static_row {
                add(s, None)?;
            }
        } else {
            for r in &p.rows {
                add(r, Some(&r.clustering))?;
            }
        }
    }
    Ok(())
}

/// The indexes of `table`, resolved.
pub fn resolved(table: &TableDef) -> Vec<(TableId, Target)> {
    table
        .indexes
        .iter()
        .filter_map(|i| target(table, i).map(|t| (table_id(table, &i.name), t)))
        .collect()
}

/// The part of a partition a write touches, for reading it before and after.
pub struct Touched {
    table: Arc<TableDef>,
    indexes: Vec<(TableId, Target)>,
    token: i64,
    key: Bytes,
    /// `None`: the whole partition.
    rows: Option<Vec<Bytes>>,
}

/// What of `mutations` touches indexed tables. Empty when nothing is indexed.
pub fn touched(schema: &Schema, mutations: &[Mutation]) -> Vec<Touched> {
    let mut out = Vec::new();
    if !schema.stored_tables().any(|t| !t.indexes.is_empty()) {
        return out;
    }
    for m in mutations {
        let Some(table) = schema
            .keyspaces
            .values()
            .flat_map(|k| k.tables.values())
            .find(|t| !t.indexes.is_empty() && t.engine_id() == m.table)
        else {
            continue;
        };
        let indexes = resolved(table);
        if indexes.is_empty() {
            continue;
        }
        let static_indexed = indexes
            .iter()
            .any(|(_, t)| table.columns[t.column].kind == ColumnKind::Static);
        let whole = m.partition_deletion.is_some()
            || !m.range_tombstones.is_empty()
            || (static_indexed && m.static_row.is_some());
        out.push(Touched {
            table: table.clone(),
            indexes,
            token: m.token,
            key: m.key.clone(),
            rows: (!whole).then(|| m.rows.iter().map(|r| r.clustering.clone()).collect()),
        });
    }
    out
}

/// The lock stripes of the touched partitions, sorted so that locks are taken in one order.
pub fn stripes(touched: &[Touched]) -> Vec<usize> {
    use std::hash::{Hash, Hasher};
    let set: BTreeSet<usize> = touched
        .iter()
        .map(|t| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            t.table.id.hash(&mut h);
            t.key.hash(&mut h);
            (h.finish() as usize) % STRIPES
        })
        .collect();
    set.into_iter().collect()
}

fn read_touched(ex: &Executor, touched: &[Touched]) -> CqlResult<Vec<(Entry, Option<Ttl>)>> {
    let mut out = Vec::new();
    for t in touched {
        let slices = match &t.rows {
            None => Vec::new(),
            Some(rows) if rows.is_empty() => continue,
            Some(rows) => {
                let mut s: Vec<ClusteringRange> = rows
                    .iter()
                    .map(|c| ClusteringRange {
                        start: ClusteringBound {
                            prefix: c.clone(),
                            inclusive: true,
                        },
                        end: ClusteringBound {
                            prefix: c.clone(),
                            inclusive: true,
                        },
                    })
                    .collect();
                s.sort_by(|a, b| a.start.prefix.cmp(&b.start.prefix));
                s.dedup();
                s
            }
        };
        if matches!(&t.rows, Some(r) if r.iter().any(|c| c.is_empty())) {
            // The only row of a table without clustering columns: read it whole.
            read_whole(ex, t, &mut out)?;
            continue;
        }
        let cmd = read_command(t.table.engine_id(), t.token, t.key.clone(), slices);
        let r = ex.engine.read(&cmd).map_err(engine_error)?;
        for p in &r.partitions {
            entries(&t.table, &t.indexes, p, &mut out)?;
        }
    }
    Ok(out)
}

fn read_whole(ex: &Executor, t: &Touched, out: &mut Vec<(Entry, Option<Ttl>)>) -> CqlResult<()> {
    let cmd = read_command(t.table.engine_id(), t.token, t.key.clone(), Vec::new());
    let r = ex.engine.read(&cmd).map_err(engine_error)?;
    for p in &r.partitions {
        entries(&t.table, &t.indexes, p, out)?;
    }
    Ok(())
}

fn read_command(
    table: TableId,
    token: i64,
    key: Bytes,
    slices: Vec<ClusteringRange>,
) -> ReadCommand {
    ReadCommand {
        table,
        partitions: PartitionRange::Single { token, key },
        slices,
        reversed: false,
        start_after_row: None,
        row_limit: usize::MAX,
        per_partition_limit: usize::MAX,
        partition_limit: usize::MAX,
        include_tombstones: false,
        now: now_seconds(),
    }
}

/// Index mutations turning `before` into `after`: stale entries deleted, current ones
/// (re)written with a later timestamp so that their TTL follows the base cell.
fn diff(
    ex: &Executor,
    before: Vec<(Entry, Option<Ttl>)>,
    after: Vec<(Entry, Option<Ttl>)>,
) -> Vec<Mutation> {
    let now = now_seconds();
    let del_ts = ex.next_timestamp();
    let ins_ts = ex.next_timestamp();
    let current: BTreeSet<&Entry> = after.iter().map(|(e, _)| e).collect();
    let mut rows: Vec<(TableId, Bytes, Row)> = Vec::new();
    for (e, _) in &before {
        if !current.contains(e) {
            rows.push((
                e.0,
                e.1.clone(),
                Row {
                    clustering: e.2.clone(),
                    deletion: Some(DeletionTime {
                        marked_for_delete_at: del_ts,
                        local_deletion_time: now,
                    }),
                    ..Default::default()
                },
            ));
        }
    }
    for (e, ttl) in &after {
        rows.push((
            e.0,
            e.1.clone(),
            Row {
                clustering: e.2.clone(),
                liveness: Some(LivenessInfo {
                    timestamp: ins_ts,
                    ttl: *ttl,
                }),
                ..Default::default()
            },
        ));
    }
    to_mutations(rows)
}

fn to_mutations(mut rows: Vec<(TableId, Bytes, Row)>) -> Vec<Mutation> {
    rows.sort_by(|a, b| (a.0, &a.1, &a.2.clustering).cmp(&(b.0, &b.1, &b.2.clustering)));
    rows.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1 && a.2.clustering == b.2.clustering);
    let mut out: Vec<Mutation> = Vec::new();
    for (table, key, row) in rows {
        match out.last_mut() {
            Some(m) if m.table == table && m.key == key => m.rows.push(row),
            _ => out.push(Mutation {
                table,
                token: partitioner::token(&key),
                key,
                partition_deletion: None,
                range_tombstones: Vec::new(),
                static_row: None,
                rows: vec![row],
            }),
        }
    }
    out
}

/// Applies `mutations`, keeping the indexes of the tables they touch consistent. This is
/// the hook `Executor::apply` runs.
pub async fn apply_indexed(ex: &Executor, mutations: Vec<Mutation>) -> CqlResult<()> {
    let schema = ex.schema();
    let touched = touched(&schema, &mutations);
    if touched.is_empty() {
        return ex.apply_raw(mutations).await;
    }
    let mut guards = Vec::new();
    for s in stripes(&touched) {
        guards.push(ex.index_locks[s].lock().await);
    }
    let before = read_touched(ex, &touched)?;
    ex.apply_raw(mutations).await?;
    let after = read_touched(ex, &touched)?;
    let index_mutations = diff(ex, before, after);
    let r = ex.apply_raw(index_mutations).await;
    drop(guards);
    r
}

/// Creates an index's engine table and fills it from the base table's current data.
pub fn build(ex: &Executor, table: &TableDef, index: &IndexDef) -> CqlResult<()> {
    let Some(t) = target(table, index) else {
        return Ok(());
    };
    let id = table_id(table, &index.name);
    set_built(ex, id, false)?;
    ex.engine
        .create_table(id, index_options(table))
        .map_err(engine_error)?;
    let indexes = vec![(id, t)];
    let mut start: Option<PartitionPosition> = None;
    const CHUNK: usize = 1000;
    loop {
        let cmd = ReadCommand {
            table: table.engine_id(),
            partitions: PartitionRange::Range {
                start: start.clone(),
                end: None,
            },
            slices: Vec::new(),
            reversed: false,
            start_after_row: None,
            row_limit: usize::MAX,
            per_partition_limit: usize::MAX,
            partition_limit: CHUNK,
            include_tombstones: false,
            now: now_seconds(),
        };
        let r = ex.engine.read(&cmd).map_err(engine_error)?;
        let n = r.partitions.len();
        let mut found = Vec::new();
        for p in &r.partitions {
            entries(table, &indexes, p, &mut found)?;
            start = Some(PartitionPosition {
                token: p.token,
                key: Some(p.key.clone()),
                inclusive: false,
            });
        }
        if !found.is_empty() {
            let m = diff(ex, Vec::new(), found);
            ex.engine.apply_sync(m).map_err(engine_error)?;
        }
        if n < CHUNK {
            return mark_built(ex, id);
        }
    }
}

pub(crate) fn index_options(table: &TableDef) -> TableOptions {
    TableOptions {
        default_time_to_live: 0,
        ..super::ddl::engine_options(table)
    }
}

/// The engine tables of every index, to open with the base tables: index data is durable
/// like any other table, so a restart does not rebuild it.
pub fn engine_tables(schema: &Schema) -> Vec<(TableId, TableOptions)> {
    schema
        .stored_tables()
        .flat_map(|t| {
            t.indexes
                .iter()
                .filter(|i| target(t, i).is_some())
                .map(|i| (table_id(t, &i.name), index_options(t)))
        })
        .collect()
}

/// The indexes whose build finished, one engine table id (hex) per line, in the schema
/// directory. An index whose build a crash interrupted is not listed, so the next start
/// rebuilds it from scratch instead of serving a partial index.
fn built_file(ex: &Executor) -> std::path::PathBuf {
    ex.store.dir().join("indexes-built.txt")
}

fn id_hex(id: TableId) -> String {
    id.0.iter().map(|b| format!("{b:02x}")).collect()
}

fn built_ids(ex: &Executor) -> std::collections::HashSet<String> {
    std::fs::read_to_string(built_file(ex))
        .map(|t| t.lines().map(|l| l.trim().to_string()).collect())
        .unwrap_or_default()
}

/// Records that an index's build completed, or forgets it (drop, or a rebuild starting),
/// atomically: temp file, fsync, rename.
pub fn mark_built(ex: &Executor, id: TableId) -> CqlResult<()> {
    set_built(ex, id, true)
}

pub(crate) fn set_built(ex: &Executor, id: TableId, built: bool) -> CqlResult<()> {
    let mut ids = built_ids(ex);
    if built {
        ids.insert(id_hex(id));
    } else if !ids.remove(&id_hex(id)) {
        return Ok(());
    }
    let mut lines: Vec<String> = ids.into_iter().collect();
    lines.sort();
    let path = built_file(ex);
    let tmp = path.with_extension("tmp");
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&tmp, text)
        .and_then(|_| std::fs::File::open(&tmp)?.sync_all())
        .and_then(|_| std::fs::rename(&tmp, &path))
        .map_err(|e| CqlError::server(format!("recording index build in {}: {e}", path.display())))
}

/// At start-up: every index table exists in the engine (opened with its data); indexes
/// whose build never completed are rebuilt.
pub fn rebuild_unfinished(ex: &Executor) -> CqlResult<()> {
    let schema = ex.schema();
    let built = built_ids(ex);
    for table in schema.stored_tables() {
        for index in &table.indexes {
            if target(table, index).is_some() {
                let id = table_id(table, &index.name);
                ex.engine
                    .create_table(id, index_options(table))
                    .map_err(engine_error)?;
                if !built.contains(&id_hex(id)) {
                    tracing::info!(index = %index.name, table = %table.name, "rebuilding an index whose build did not finish");
                    ex.engine.truncate(id).map_err(engine_error)?;
                    build(ex, table, index)?;
                }
            }
        }
    }
    Ok(())
}

/// A read through an index: the index partition to walk and which filter it answers.
#[derive(Clone, Debug)]
pub struct Plan {
    pub index_table: TableId,
    pub token: i64,
    pub key: Bytes,
    /// Index into `Where::filters` of the restriction the index answers.
    pub filter: usize,
}

/// Picks an index answering one of the WHERE clause's filters, if any.
pub fn plan(table: &TableDef, where_: &Where) -> Option<Plan> {
    let indexes: Vec<(TableId, Target)> = resolved(table);
    for (fi, f) in where_.filters.iter().enumerate() {
        for (id, t) in &indexes {
            if t.column != f.column {
                continue;
            }
            if let Some(key) = answers(table, t, f) {
                return Some(Plan {
                    index_table: *id,
                    token: partitioner::token(&key),
                    key,
                    filter: fi,
                });
            }
        }
    }
    None
}

fn answers(table: &TableDef, t: &Target, f: &Filter) -> Option<Bytes> {
    let ty = &table.columns[t.column].ty;
    let v = f.values.first()?.clone();
    if v.is_empty() {
        return None;
    }
    match (t.kind, f.op, &f.map_key) {
        (IndexTargetKind::Simple | IndexTargetKind::Full, Operator::Eq, None)
            if !ty.is_multicell() =>
        {
            Some(v)
        }
        (IndexTargetKind::Simple | IndexTargetKind::Values, Operator::Contains, None) => Some(v),
        (IndexTargetKind::Keys, Operator::ContainsKey, None) => Some(v),
        (IndexTargetKind::Entries, Operator::Eq, Some(k)) => Some(entry_key(k, &v)),
        _ => None,
    }
}

/// Whether a query answered by `plan` still needs ALLOW FILTERING: when another non-key
/// column is restricted, as Cassandra requires.
pub fn needs_filtering(table: &TableDef, where_: &Where, plan: &Plan) -> bool {
    where_
        .filters
        .iter()
        .enumerate()
        .any(|(i, f)| i != plan.filter && !table.columns[f.column].is_primary_key())
        || matches!(
            where_.partitions,
            Partitions::Scan { start: Some(_), .. } | Partitions::Scan { end: Some(_), .. }
        )
}

fn schema_change(keyspace: &str, table: &str) -> SchemaChange {
    SchemaChange {
        change: "UPDATED",
        target: "TABLE",
        keyspace: keyspace.to_string(),
        name: table.to_string(),
        arguments: Vec::new(),
    }
}

fn kind_name(kind: IndexTargetKind) -> &'static str {
    match kind {
        IndexTargetKind::Simple => "simple",
        IndexTargetKind::Values => "values",
        IndexTargetKind::Keys => "keys",
        IndexTargetKind::Entries => "entries",
        IndexTargetKind::Full => "full",
    }
}

fn has_duration(t: &CqlType) -> bool {
    match t {
        CqlType::Duration => true,
        CqlType::List { elem, .. } | CqlType::Set { elem, .. } | CqlType::Vector { elem, .. } => {
            has_duration(elem)
        }
        CqlType::Map { key, value, .. } => has_duration(key) || has_duration(value),
        CqlType::Tuple(ts) => ts.iter().any(has_duration),
        CqlType::Udt { def, .. } => def.fields.iter().any(|(_, t)| has_duration(t)),
        _ => false,
    }
}

/// CREATE INDEX: validates as Cassandra does, persists the schema, then builds the index
/// from existing data (after the schema is live, so concurrent writes maintain it too).
pub fn create_index(
    ex: &Executor,
    mut schema: Schema,
    keyspace: Option<&str>,
    s: &CreateIndexStatement,
) -> CqlResult<Option<SchemaChange>> {
    let ks_name = s
        .table
        .keyspace
        .as_deref()
        .or(keyspace)
        .ok_or_else(|| CqlError::invalid("No keyspace has been specified. USE a keyspace, or explicitly specify keyspace.tablename"))?
        .to_string();
    let ks = schema
        .keyspaces
        .get(&ks_name)
        .cloned()
        .ok_or_else(|| CqlError::invalid(format!("Keyspace '{ks_name}' doesn't exist")))?;
    if ks.is_system {
        return Err(CqlError::Unauthorized(format!(
            "{ks_name} keyspace is not user-modifiable."
        )));
    }
    let table = ks
        .tables
        .get(&s.table.name)
        .cloned()
        .ok_or_else(|| CqlError::invalid(format!("Table '{}' doesn't exist", s.table.name)))?;
    let name_taken = |n: &str| {
        ks.tables
            .values()
            .any(|t| t.indexes.iter().any(|i| i.name == n))
    };
    if let Some(n) = &s.name
        && name_taken(n)
    {
        if s.if_not_exists {
            return Ok(None);
        }
        return Err(CqlError::invalid(format!("Index '{n}' already exists")));
    }
    if let Some(class) = &s.custom_class {
        if class.contains("SASIIndex") {
            return Err(CqlError::invalid(
                "SASI indexes are disabled. Enable in cassandra.yaml to use.",
            ));
        }
        return Err(CqlError::invalid(format!(
            "Custom index class {class} is not supported by this node"
        )));
    }
    if table.is_counter {
        return Err(CqlError::invalid(
            "Secondary indexes on counter tables aren't supported",
        ));
    }
    let (column, raw_kind) = match s.targets.as_slice() {
        [] => {
            return Err(CqlError::invalid(
                "Only CUSTOM indexes can be created without specifying a target column",
            ));
        }
        [one] => one.clone(),
        _ => {
            return Err(CqlError::invalid(
                "Only CUSTOM indexes support multiple columns",
            ));
        }
    };
    let col = table
        .column(&column)
        .ok_or_else(|| CqlError::invalid(format!("Column '{column}' doesn't exist")))?
        .clone();
    let shown = crate::schema::describe::maybe_quote(&col.name);
    if has_duration(&col.ty) {
        return Err(CqlError::invalid(match &col.ty {
            CqlType::List { .. } | CqlType::Set { .. } | CqlType::Map { .. } => {
                "Secondary indexes are not supported on collections containing durations"
            }
            CqlType::Tuple(_) => {
                "Secondary indexes are not supported on tuples containing durations"
            }
            CqlType::Udt { .. } => {
                "Secondary indexes are not supported on UDTs containing durations"
            }
            _ => "Secondary indexes are not supported on duration columns",
        }));
    }
    if col.kind == ColumnKind::PartitionKey && table.partition_key_len == 1 {
        return Err(CqlError::invalid(format!(
            "Cannot create secondary index on the only partition key column {shown}"
        )));
    }
    let is_collection = col.ty.is_collection();
    let frozen_collection = is_collection && !col.ty.is_multicell();
    // `CREATE INDEX ON t (l)` on a non-frozen collection indexes its values.
    let kind = if raw_kind == IndexTargetKind::Simple && is_collection && col.ty.is_multicell() {
        IndexTargetKind::Values
    } else {
        raw_kind
    };
    if frozen_collection && kind != IndexTargetKind::Full {
        return Err(CqlError::invalid(format!(
            "Cannot create {}() index on frozen column {shown}. Frozen collections are immutable and must be fully indexed by using the 'full({shown})' modifier",
            kind_name(kind)
        )));
    }
    if !frozen_collection && kind == IndexTargetKind::Full {
        return Err(CqlError::invalid(
            "full() indexes can only be created on frozen collections",
        ));
    }
    if !is_collection && kind != IndexTargetKind::Simple {
        return Err(CqlError::invalid(format!(
            "Cannot create {}() index on {shown}. Non-collection columns only support simple indexes",
            kind_name(kind)
        )));
    }
    let multicell_map = matches!(col.ty, CqlType::Map { .. }) && col.ty.is_multicell();
    if !multicell_map && matches!(kind, IndexTargetKind::Keys | IndexTargetKind::Entries) {
        return Err(CqlError::invalid(format!(
            "Cannot create index on {} of column {shown} with non-map type",
            kind_name(kind)
        )));
    }
    if matches!(col.ty, CqlType::Udt { .. }) && col.ty.is_multicell() {
        return Err(CqlError::invalid(format!(
            "Cannot create index on non-frozen UDT column {shown}"
        )));
    }
    let target = target_text(&col.name, kind);
    if let Some(dup) = table
        .indexes
        .iter()
        .find(|i| i.kind != "CUSTOM" && i.options.get("target") == Some(&target))
    {
        if s.if_not_exists {
            return Ok(None);
        }
        let name = s
            .name
            .clone()
            .unwrap_or_else(|| default_name(&table.name, &col.name, &name_taken));
        return Err(CqlError::invalid(format!(
            "Index {name} is a duplicate of existing index {}",
            dup.name
        )));
    }
    let name = match &s.name {
        Some(n) => n.clone(),
        None => default_name(&table.name, &col.name, &name_taken),
    };
    let index = IndexDef {
        name: name.clone(),
        kind: "COMPOSITES".into(),
        options: [("target".to_string(), target)].into_iter().collect(),
    };
    let mut new_table = (*table).clone();
    new_table.indexes.push(index.clone());
    ex.engine
        .create_table(table_id(&new_table, &name), index_options(&new_table))
        .map_err(engine_error)?;
    let mut new_ks = (*ks).clone();
    new_ks
        .tables
        .insert(new_table.name.clone(), Arc::new(new_table.clone()));
    schema.keyspaces.insert(ks_name.clone(), Arc::new(new_ks));
    let change = schema_change(&ks_name, &table.name);
    ex.commit_schema(schema, &change)?;
    build(ex, &new_table, &index)?;
    Ok(Some(change))
}

/// `<table>_<column>_idx` without non-word characters, suffixed `_1`, `_2`... when taken.
fn default_name(table: &str, column: &str, taken: &dyn Fn(&str) -> bool) -> String {
    let base: String = format!("{table}_{column}_idx")
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    if !taken(&base) {
        return base;
    }
    (1..)
        .map(|i| format!("{base}_{i}"))
        .find(|n| !taken(n))
        .unwrap_or(base)
}

/// DROP INDEX [ks.]name.
pub fn drop_index(
    ex: &Executor,
    mut schema: Schema,
    keyspace: Option<&str>,
    name: &QualifiedName,
    if_exists: bool,
) -> CqlResult<Option<SchemaChange>> {
    let ks_name = name
        .keyspace
        .as_deref()
        .or(keyspace)
        .ok_or_else(|| CqlError::invalid("No keyspace has been specified. USE a keyspace, or explicitly specify keyspace.tablename"))?
        .to_string();
    let missing = || CqlError::invalid(format!("Index '{ks_name}.{}' doesn't exist'", name.name));
    let Some(ks) = schema.keyspaces.get(&ks_name).cloned() else {
        if if_exists {
            return Ok(None);
        }
        return Err(missing());
    };
    let Some(table) = ks
        .tables
        .values()
        .find(|t| t.indexes.iter().any(|i| i.name == name.name))
        .cloned()
    else {
        if if_exists {
            return Ok(None);
        }
        return Err(missing());
    };
    let mut new_table = (*table).clone();
    new_table.indexes.retain(|i| i.name != name.name);
    let mut new_ks = (*ks).clone();
    new_ks
        .tables
        .insert(new_table.name.clone(), Arc::new(new_table));
    schema.keyspaces.insert(ks_name.clone(), Arc::new(new_ks));
    let change = schema_change(&ks_name, &table.name);
    ex.commit_schema(schema, &change)?;
    ex.engine
        .drop_table(table_id(&table, &name.name))
        .map_err(engine_error)?;
    set_built(ex, table_id(&table, &name.name), false)?;
    Ok(Some(change))
}
