//! INSERT, UPDATE, DELETE and BATCH: from statements to engine mutations.

use std::sync::Arc;

use bytes::Bytes;
use shoal_engine::{
    Cell, CellValue, DeletionTime, LivenessInfo, Mutation, RangeTombstone, Row, Ttl,
};

use super::binds::{Bound, resolve_table};
use super::restrictions::{self, Partitions, key_value};
use super::{Executor, current, now_seconds, value};
use crate::error::{CqlError, CqlResult};
use crate::parser::ast::*;
use crate::schema::{ColumnDef, ColumnKind, Schema, TableDef};
use crate::types::literal::{BindSource, Evaluated, evaluate};
use crate::types::{CqlType, Value, codec, compare};

/// Cassandra's cap on TTLs: 20 years.
pub const MAX_TTL: i64 = 630_720_000;
/// Keys are length-prefixed with a u16 on disk and in composite keys.
pub const MAX_KEY_LEN: usize = 65_535;

/// Everything a write statement needs besides its AST and values.
pub struct WriteContext<'a> {
    pub executor: &'a Executor,
    pub schema: &'a Schema,
    pub keyspace: Option<&'a str>,
    /// The protocol-level default timestamp (µs), if the client sent one.
    pub timestamp: Option<i64>,
    /// The BATCH's own `USING TIMESTAMP`.
    pub batch_timestamp: Option<i64>,
}

struct WriteParams {
    timestamp: i64,
    ttl: Option<Ttl>,
    now: i32,
}

fn write_params(
    ctx: &WriteContext,
    table: &TableDef,
    using: &UsingClause,
    binds: &dyn BindSource,
) -> CqlResult<WriteParams> {
    let now = now_seconds();
    let timestamp = match &using.timestamp {
        Some(t) => {
            if ctx.batch_timestamp.is_some() {
                return Err(CqlError::invalid(
                    "Timestamp must be set either on BATCH or individual statements",
                ));
            }
            match evaluate(&CqlType::Bigint, t, "[timestamp]", binds)? {
                Evaluated::Value(b) => i64::from_be_bytes(
                    b.as_ref()
                        .try_into()
                        .map_err(|_| CqlError::invalid("Invalid timestamp value"))?,
                ),
                Evaluated::Null => {
                    return Err(CqlError::invalid("Invalid null value of timestamp"));
                }
                Evaluated::Unset => ctx
                    .batch_timestamp
                    .or(ctx.timestamp)
                    .unwrap_or_else(|| ctx.executor.next_timestamp()),
            }
        }
        None => ctx
            .batch_timestamp
            .or(ctx.timestamp)
            .unwrap_or_else(|| ctx.executor.next_timestamp()),
    };
    let ttl_secs: i64 = match &using.ttl {
        Some(t) => match evaluate(&CqlType::Int, t, "[ttl]", binds)? {
            Evaluated::Value(b) => i32::from_be_bytes(
                b.as_ref()
                    .try_into()
                    .map_err(|_| CqlError::invalid("Invalid TTL value"))?,
            ) as i64,
            Evaluated::Null => return Err(CqlError::invalid("Invalid null value of TTL")),
            Evaluated::Unset => table.params.default_time_to_live as i64,
        },
        None => table.params.default_time_to_live as i64,
    };
    if ttl_secs < 0 {
        return Err(CqlError::invalid(format!(
            "A TTL must be greater or equal to 0, but was {ttl_secs}"
        )));
    }
    if ttl_secs > MAX_TTL {
        return Err(CqlError::invalid(format!(
            "ttl is too large. requested ({ttl_secs}) maximum ({MAX_TTL})"
        )));
    }
    let ttl = (ttl_secs > 0).then(|| Ttl {
        ttl: ttl_secs as u32,
        local_expiration_time: now.saturating_add(ttl_secs as i32),
    });
    Ok(WriteParams {
        timestamp,
        ttl,
        now,
    })
}

/// The mutations of one INSERT, UPDATE or DELETE.
pub fn mutations_for(
    ctx: &WriteContext,
    statement: &Statement,
    binds: &Bound,
) -> CqlResult<Vec<Mutation>> {
    match statement {
        Statement::Insert(i) => insert(ctx, i, binds),
        Statement::Update(u) => update(ctx, u, binds),
        Statement::Delete(d) => delete(ctx, d, binds),
        Statement::Batch(b) => batch_mutations(ctx, b, binds),
        _ => Err(CqlError::invalid(
            "Only INSERT, UPDATE and DELETE statements write",
        )),
    }
}

/// The mutations of a `BEGIN BATCH ... APPLY BATCH` text, merged per partition.
pub fn batch_mutations(
    ctx: &WriteContext,
    b: &BatchStatement,
    binds: &Bound,
) -> CqlResult<Vec<Mutation>> {
    let batch_ts = match &b.using.timestamp {
        Some(t) => match evaluate(&CqlType::Bigint, t, "[timestamp]", binds)? {
            Evaluated::Value(v) => Some(i64::from_be_bytes(
                v.as_ref()
                    .try_into()
                    .map_err(|_| CqlError::invalid("Invalid timestamp value"))?,
            )),
            _ => None,
        },
        None => None,
    };
    if b.using.ttl.is_some() {
        return Err(CqlError::invalid(
            "Global TTL on the BATCH statement is not supported.",
        ));
    }
    let tables: Vec<(Option<String>, &Statement)> = b
        .statements
        .iter()
        .map(|s| (ctx.keyspace.map(str::to_string), s))
        .collect();
    check_batch_kind(ctx.schema, b.kind, &tables)?;
    // One timestamp for the whole batch, so its statements are applied as one write.
    let ts = batch_ts
        .or(ctx.timestamp)
        .unwrap_or_else(|| ctx.executor.next_timestamp());
    let child = WriteContext {
        executor: ctx.executor,
        schema: ctx.schema,
        keyspace: ctx.keyspace,
        timestamp: Some(ts),
        batch_timestamp: batch_ts,
    };
    let mut out = Vec::new();
    for s in &b.statements {
        if s_has_conditions(s) {
            return Err(CqlError::invalid(
                "Conditional statements in batches are not supported yet",
            ));
        }
        out.extend(mutations_for(&child, s, binds)?);
    }
    Ok(super::merge_mutations(out))
}

fn s_has_conditions(s: &Statement) -> bool {
    match s {
        Statement::Insert(i) => i.if_not_exists,
        Statement::Update(u) => u.conditions.is_some(),
        Statement::Delete(d) => d.conditions.is_some(),
        _ => false,
    }
}

/// Cassandra's rules on which statements a batch kind may hold.
pub fn check_batch_kind(
    schema: &Schema,
    kind: BatchKind,
    statements: &[(Option<String>, &Statement)],
) -> CqlResult<()> {
    let mut counters = false;
    let mut others = false;
    for (ks, s) in statements {
        let name = match s {
            Statement::Insert(i) => &i.table,
            Statement::Update(u) => &u.table,
            Statement::Delete(d) => &d.table,
            _ => {
                return Err(CqlError::invalid(
                    "Invalid statement in batch: only UPDATE, INSERT and DELETE statements are allowed.",
                ));
            }
        };
        if resolve_table(schema, ks.as_deref(), name)?.is_counter {
            counters = true;
        } else {
            others = true;
        }
    }
    match kind {
        _ if counters && others => Err(CqlError::invalid(
            "Counter and non-counter mutations cannot exist in the same batch",
        )),
        BatchKind::Counter if others => Err(CqlError::invalid(
            "Cannot include non-counter statement in a counter batch",
        )),
        BatchKind::Logged if counters => Err(CqlError::invalid(
            "Cannot include a counter statement in a logged batch",
        )),
        _ => Ok(()),
    }
}

fn check_no_conditions(conditions: bool) -> CqlResult<()> {
    if conditions {
        return Err(CqlError::invalid(
            "Conditional updates (IF ...) are not supported yet by this node",
        ));
    }
    Ok(())
}

fn partition_key_bytes(table: &TableDef, components: &[Bytes]) -> CqlResult<Bytes> {
    for (c, v) in table.partition_key().iter().zip(components) {
        if v.len() > MAX_KEY_LEN {
            return Err(CqlError::invalid(format!(
                "Key length of {} is longer than maximum of {MAX_KEY_LEN}",
                v.len()
            )));
        }
        let _ = c;
    }
    let refs: Vec<&[u8]> = components.iter().map(|b| b.as_ref()).collect();
    Ok(Bytes::from(shoal_gossip::partitioner::compose_key(&refs)))
}

pub(crate) fn clustering_bytes(table: &TableDef, components: &[Bytes]) -> CqlResult<Bytes> {
    for (c, v) in table.clustering().iter().zip(components) {
        if v.len() > MAX_KEY_LEN {
            return Err(CqlError::invalid(format!(
                "Key length of {} is longer than maximum of {MAX_KEY_LEN} for clustering column {}",
                v.len(),
                c.name
            )));
        }
    }
    restrictions::encode_prefix(table, components)
}

pub(crate) fn new_mutation(table: &TableDef, pk: &[Bytes]) -> CqlResult<Mutation> {
    let key = partition_key_bytes(table, pk)?;
    let token = shoal_gossip::partitioner::token(&key);
    Ok(Mutation {
        table: table.engine_id(),
        token,
        key,
        partition_deletion: None,
        range_tombstones: Vec::new(),
        static_row: None,
        rows: Vec::new(),
    })
}

fn stored_table(ctx: &WriteContext, name: &QualifiedName) -> CqlResult<Arc<TableDef>> {
    let t = resolve_table(ctx.schema, ctx.keyspace, name)?;
    if t.source != crate::schema::TableSource::Stored
        || crate::schema::is_system_keyspace(&t.keyspace)
    {
        return Err(CqlError::Unauthorized(format!(
            "{} keyspace is not user-modifiable.",
            t.keyspace
        )));
    }
    Ok(t)
}

fn insert(ctx: &WriteContext, ins: &InsertStatement, binds: &Bound) -> CqlResult<Vec<Mutation>> {
    let table = stored_table(ctx, &ins.table)?;
    if table.is_counter {
        return Err(CqlError::invalid(
            "INSERT statements are not allowed on counter tables, use UPDATE instead",
        ));
    }
    check_no_conditions(ins.if_not_exists)?;
    let (columns, values) = match &ins.values {
        InsertValues::Values { columns, values } => (columns, values),
        InsertValues::Json {
            json,
            default_unset,
        } => {
            // Rewritten as `INSERT (cols) VALUES (fromJson(..), ...)` so that the JSON form
            // validates and writes exactly like the VALUES form.
            let text = match evaluate(&CqlType::Text, json, "[json]", binds)? {
                Evaluated::Value(b) => String::from_utf8_lossy(&b).into_owned(),
                _ => return Err(CqlError::invalid("Got null for INSERT JSON values")),
            };
            let parsed = crate::types::json::parse(&text).map_err(|_| {
                CqlError::invalid(format!(
                    "Could not decode JSON string as a map: {text}. (String was: {text})"
                ))
            })?;
            let serde_json::Value::Object(map) = parsed else {
                return Err(CqlError::invalid(format!(
                    "Could not decode JSON string as a map: {text}. (String was: {text})"
                )));
            };
            let mut given: std::collections::HashMap<String, serde_json::Value> = map
                .into_iter()
                .map(|(k, v)| (crate::types::json::column_key(&k), v))
                .collect();
            let mut columns = Vec::new();
            let mut values = Vec::new();
            for col in &table.columns {
                let term = match given.remove(&col.name) {
                    Some(v) => {
                        // Decode now so errors name the column as Cassandra does.
                        crate::types::json::from_json(&col.ty, &v).map_err(|e| {
                            CqlError::invalid(format!(
                                "Error decoding JSON value for {}: {}",
                                col.name,
                                match e {
                                    CqlError::Invalid(m) => m,
                                    other => other.to_string(),
                                }
                            ))
                        })?;
                        Term::FunctionCall {
                            name: QualifiedName {
                                keyspace: None,
                                name: "fromjson".into(),
                            },
                            args: vec![Term::Literal(Literal::String(v.to_string()))],
                        }
                    }
                    None if *default_unset || col.is_primary_key() => continue,
                    None => Term::Literal(Literal::Null),
                };
                columns.push(col.name.clone());
                values.push(term);
            }
            if let Some(k) = given.keys().next() {
                return Err(CqlError::invalid(format!(
                    "JSON values map contains unrecognized column: {k}"
                )));
            }
            let rewritten = InsertStatement {
                values: InsertValues::Values { columns, values },
                ..ins.clone()
            };
            return insert(ctx, &rewritten, binds);
        }
    };
    if columns.len() != values.len() {
        return Err(CqlError::invalid("Unmatched column names/values"));
    }
    let params = write_params(ctx, &table, &ins.using, binds)?;
    let mut seen = std::collections::HashSet::new();
    let mut pk: Vec<Option<Bytes>> = vec![None; table.partition_key_len];
    let mut ck: Vec<Option<Bytes>> = vec![None; table.clustering_len];
    let mut assigned: Vec<(&ColumnDef, Evaluated)> = Vec::new();
    for (name, term) in columns.iter().zip(values) {
        let col = table.column_or_err(name)?;
        if !seen.insert(name) {
            return Err(CqlError::invalid(format!(
                "Multiple definitions found for column {name}"
            )));
        }
        match col.kind {
            ColumnKind::PartitionKey => {
                pk[col.position as usize] = Some(key_value(&col.ty, term, name, binds)?)
            }
            ColumnKind::Clustering => {
                ck[col.position as usize] = Some(key_value(&col.ty, term, name, binds)?)
            }
            _ => assigned.push((col, evaluate(&col.ty, term, name, binds)?)),
        }
    }
    let missing: Vec<&str> = table
        .partition_key()
        .iter()
        .filter(|c| pk[c.position as usize].is_none())
        .map(|c| c.name.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(CqlError::invalid(format!(
            "Some partition key parts are missing: {}",
            missing.join(", ")
        )));
    }
    let pk: Vec<Bytes> = pk.into_iter().map(|v| v.expect("checked")).collect();
    let only_static =
        !assigned.is_empty() && assigned.iter().all(|(c, _)| c.kind == ColumnKind::Static);
    let missing_ck: Vec<&str> = table
        .clustering()
        .iter()
        .filter(|c| ck[c.position as usize].is_none())
        .map(|c| c.name.as_str())
        .collect();
    if !(missing_ck.is_empty() || only_static && missing_ck.len() == table.clustering_len) {
        return Err(CqlError::invalid(format!(
            "Some clustering keys are missing: {}",
            missing_ck.join(", ")
        )));
    }
    let mut m = new_mutation(&table, &pk)?;
    let mut row = Row {
        liveness: Some(LivenessInfo {
            timestamp: params.timestamp,
            ttl: params.ttl,
        }),
        ..Default::default()
    };
    let mut static_row = Row::default();
    for (col, v) in assigned {
        let target = if col.kind == ColumnKind::Static {
            &mut static_row
        } else {
            &mut row
        };
        set_column(target, col, v, &params)?;
    }
    if missing_ck.is_empty() {
        row.clustering = clustering_bytes(
            &table,
            &ck.into_iter()
                .map(|v| v.expect("checked"))
                .collect::<Vec<_>>(),
        )?;
        sort_row(&mut row);
        m.rows.push(row);
    }
    if !static_row.cells.is_empty() || !static_row.complex_deletions.is_empty() {
        sort_row(&mut static_row);
        m.static_row = Some(static_row);
    }
    Ok(vec![m])
}

/// Writes a whole-column value into `row`: a cell, a tombstone for null, nothing for unset.
fn set_column(row: &mut Row, col: &ColumnDef, v: Evaluated, p: &WriteParams) -> CqlResult<()> {
    if col.ty.is_multicell() {
        // Overwriting a collection deletes what was there just before this write.
        match v {
            Evaluated::Unset => {}
            Evaluated::Null => row.complex_deletions.push((
                col.id,
                DeletionTime {
                    marked_for_delete_at: p.timestamp - 1,
                    local_deletion_time: p.now,
                },
            )),
            Evaluated::Value(b) => {
                row.complex_deletions.push((
                    col.id,
                    DeletionTime {
                        marked_for_delete_at: p.timestamp - 1,
                        local_deletion_time: p.now,
                    },
                ));
                for (path, val) in value::multicell_elements(&col.ty, &b, p.timestamp)? {
                    row.cells.push(Cell {
                        column: col.id,
                        path: Some(path),
                        timestamp: p.timestamp,
                        value: CellValue::Live {
                            value: val,
                            ttl: p.ttl,
                        },
                    });
                }
            }
        }
        return Ok(());
    }
    match v {
        Evaluated::Unset => {}
        Evaluated::Null => row.cells.push(Cell {
            column: col.id,
            path: None,
            timestamp: p.timestamp,
            value: CellValue::Tombstone {
                local_deletion_time: p.now,
            },
        }),
        Evaluated::Value(b) => row.cells.push(Cell {
            column: col.id,
            path: None,
            timestamp: p.timestamp,
            value: CellValue::Live {
                value: b,
                ttl: p.ttl,
            },
        }),
    }
    Ok(())
}

pub(crate) fn sort_row(row: &mut Row) {
    row.cells
        .sort_by(|a, b| (a.column, &a.path).cmp(&(b.column, &b.path)));
    row.cells.dedup_by(|later, earlier| {
        if (later.column, &later.path) == (earlier.column, &earlier.path) {
            // Within one statement the last assignment wins.
            std::mem::swap(later, earlier);
            true
        } else {
            false
        }
    });
    row.complex_deletions.sort_by_key(|(c, _)| *c);
    row.complex_deletions.dedup_by_key(|(c, _)| *c);
}

fn partition_keys(table: &TableDef, where_: &restrictions::Where) -> CqlResult<Vec<Vec<Bytes>>> {
    match &where_.partitions {
        Partitions::Keys(keys) => Ok(keys.clone()),
        Partitions::Scan { .. } => {
            let missing: Vec<&str> = table
                .partition_key()
                .iter()
                .map(|c| c.name.as_str())
                .collect();
            Err(CqlError::invalid(format!(
                "Some partition key parts are missing: {}",
                missing.join(", ")
            )))
        }
    }
}

fn check_write_where(table: &TableDef, where_: &restrictions::Where) -> CqlResult<()> {
    if !where_.filters.is_empty() || where_.needs_filtering {
        if let Some(f) = where_.filters.first() {
            let col = &table.columns[f.column];
            if !col.is_primary_key() {
                return Err(CqlError::invalid(format!(
                    "Non PRIMARY KEY columns found in where clause: {}",
                    col.name
                )));
            }
        }
        if let Some(reason) = &where_.filtering_reason
            && !reason.starts_with("Cannot execute")
        {
            return Err(CqlError::invalid(reason.clone()));
        }
        return Err(CqlError::invalid(
            "Invalid restrictions on primary key columns for a modification statement",
        ));
    }
    Ok(())
}

/// Reads one row's current state on first need: list operations by index or by value are
/// read-before-write in Cassandra too, and they see the state before the statement.
struct RowReader<'a> {
    ex: &'a Executor,
    table: &'a TableDef,
    token: i64,
    key: Bytes,
    clustering: Bytes,
    cached: Option<current::Current>,
}

impl<'a> RowReader<'a> {
    fn new(ctx: &WriteContext<'a>, table: &'a TableDef, m: &Mutation, clustering: Bytes) -> Self {
        RowReader {
            ex: ctx.executor,
            table,
            token: m.token,
            key: m.key.clone(),
            clustering,
            cached: None,
        }
    }

    fn elements(&mut self, col: &ColumnDef) -> CqlResult<Vec<(Bytes, Bytes)>> {
        if self.cached.is_none() {
            self.cached = Some(current::read_row(
                self.ex,
                self.table,
                self.token,
                &self.key,
                &self.clustering,
            )?);
        }
        let c = self.cached.as_ref().expect("read above");
        let row = if col.kind == ColumnKind::Static {
            c.static_row.as_ref()
        } else {
            c.row.as_ref()
        };
        Ok(current::elements(row, col))
    }
}

fn target_name(t: &ColumnTarget) -> &String {
    match t {
        ColumnTarget::Column(n) | ColumnTarget::Element(n, _) | ColumnTarget::Field(n, _) => n,
    }
}

fn update(ctx: &WriteContext, up: &UpdateStatement, binds: &Bound) -> CqlResult<Vec<Mutation>> {
    let table = stored_table(ctx, &up.table)?;
    check_no_conditions(up.conditions.is_some())?;
    if table.is_counter && up.using.ttl.is_some() {
        return Err(CqlError::invalid(
            "Cannot provide custom TTL for counter updates",
        ));
    }
    let params = write_params(ctx, &table, &up.using, binds)?;
    let where_ = restrictions::analyze(&table, &up.where_clause, binds)?;
    check_write_where(&table, &where_)?;
    let keys = partition_keys(&table, &where_)?;

    let mut statics: Vec<(&ColumnDef, &Assignment)> = Vec::new();
    let mut regulars: Vec<(&ColumnDef, &Assignment)> = Vec::new();
    for a in &up.assignments {
        let name = target_name(&a.target);
        let col = table.column_or_err(name)?;
        if col.is_primary_key() {
            return Err(CqlError::invalid(format!(
                "PRIMARY KEY part {name} found in SET part"
            )));
        }
        if col.kind == ColumnKind::Static {
            statics.push((col, a));
        } else {
            regulars.push((col, a));
        }
    }
    let regular = !regulars.is_empty();
    let ckeys = match where_.full_clustering_keys(&table) {
        Some(k) => k,
        None if !regular
            && table.clustering_len > 0
            && where_.clustering_eq.is_empty()
            && where_.clustering_slice.is_none() =>
        {
            Vec::new()
        }
        None => {
            let missing: Vec<&str> = table.clustering()[where_.clustering_eq.len()..]
                .iter()
                .map(|c| c.name.as_str())
                .collect();
            if where_.clustering_slice.is_some() {
                return Err(CqlError::invalid(
                    "Slice restrictions are not supported on the clustering columns in UPDATE statements",
                ));
            }
            return Err(CqlError::invalid(format!(
                "Some clustering keys are missing: {}",
                missing.join(", ")
            )));
        }
    };
    let mut out = Vec::with_capacity(keys.len());
    for pk in &keys {
        let mut m = new_mutation(&table, pk)?;
        let mut static_row = Row::default();
        let mut reader = RowReader::new(ctx, &table, &m, Bytes::new());
        for (col, a) in &statics {
            apply_assignment(
                &mut static_row,
                col,
                a,
                &params,
                binds,
                table.is_counter,
                &mut reader,
            )?;
        }
        if regular || table.clustering_len == 0 {
            for ck in &ckeys {
                let clustering = clustering_bytes(&table, ck)?;
                let mut r = Row {
                    clustering: clustering.clone(),
                    ..Default::default()
                };
                let mut reader = RowReader::new(ctx, &table, &m, clustering);
                for (col, a) in &regulars {
                    apply_assignment(
                        &mut r,
                        col,
                        a,
                        &params,
                        binds,
                        table.is_counter,
                        &mut reader,
                    )?;
                }
                sort_row(&mut r);
                m.rows.push(r);
            }
        }
        sort_row(&mut static_row);
        if !static_row.cells.is_empty() || !static_row.complex_deletions.is_empty() {
            m.static_row = Some(static_row);
        }
        m.rows.sort_by(|a, b| a.clustering.cmp(&b.clustering));
        m.rows.dedup_by(|a, b| a.clustering == b.clustering);
        out.push(m);
    }
    Ok(out)
}

/// Cassandra's rendering of an operation in its error messages.
fn operation_text(a: &Assignment) -> String {
    let name = target_name(&a.target);
    match (&a.target, &a.value) {
        (ColumnTarget::Element(_, k), AssignValue::Set(t)) => format!("{name}[{k}] = {t}"),
        (ColumnTarget::Field(_, f), AssignValue::Set(t)) => format!("{name}.{f} = {t}"),
        (_, AssignValue::Set(t)) => format!("{name} = {t}"),
        (_, AssignValue::Add(t)) => format!("{name} = {name} + {t}"),
        (_, AssignValue::Subtract(t)) => format!("{name} = {name} - {t}"),
        (_, AssignValue::Prepend(t)) => format!("{name} = {t} + {name}"),
    }
}

fn element_cell(col: &ColumnDef, path: Bytes, v: Evaluated, p: &WriteParams) -> Option<Cell> {
    let value = match v {
        Evaluated::Value(v) => CellValue::Live {
            value: v,
            ttl: p.ttl,
        },
        Evaluated::Null => CellValue::Tombstone {
            local_deletion_time: p.now,
        },
        Evaluated::Unset => return None,
    };
    Some(Cell {
        column: col.id,
        path: Some(path),
        timestamp: p.timestamp,
        value,
    })
}

fn element_tombstone(col: &ColumnDef, path: Bytes, p: &WriteParams) -> Cell {
    Cell {
        column: col.id,
        path: Some(path),
        timestamp: p.timestamp,
        value: CellValue::Tombstone {
            local_deletion_time: p.now,
        },
    }
}

fn list_index(term: &Term, name: &str, binds: &Bound) -> CqlResult<Option<i64>> {
    match evaluate(&CqlType::Int, term, name, binds)? {
        Evaluated::Value(b) => Ok(Some(i32::from_be_bytes(
            b.as_ref()
                .try_into()
                .map_err(|_| CqlError::invalid("Invalid list index"))?,
        ) as i64)),
        Evaluated::Null => Err(CqlError::invalid("Invalid null value for list index")),
        Evaluated::Unset => Ok(None),
    }
}

fn apply_assignment(
    row: &mut Row,
    col: &ColumnDef,
    a: &Assignment,
    p: &WriteParams,
    binds: &Bound,
    counter_table: bool,
    reader: &mut RowReader,
) -> CqlResult<()> {
    let name = &col.name;
    if counter_table {
        let (term, negate) = match (&a.target, &a.value) {
            (ColumnTarget::Column(_), AssignValue::Add(t)) => (t, false),
            (ColumnTarget::Column(_), AssignValue::Subtract(t)) => (t, true),
            _ => {
                return Err(CqlError::invalid(format!(
                    "Cannot set the value of counter column {name} (counters can only be incremented/decremented, not set)"
                )));
            }
        };
        let delta = match evaluate(&CqlType::Bigint, term, name, binds)? {
            Evaluated::Value(b) => i64::from_be_bytes(
                b.as_ref()
                    .try_into()
                    .map_err(|_| CqlError::invalid("Invalid counter delta"))?,
            ),
            Evaluated::Null => {
                return Err(CqlError::invalid(format!(
                    "Invalid null value for counter increment on {name}"
                )));
            }
            Evaluated::Unset => return Ok(()),
        };
        let delta = if negate {
            delta.checked_neg().ok_or_else(|| CqlError::invalid("The negation of -9223372036854775808 overflows supported counter precision (signed 8 bytes integer)"))?
        } else {
            delta
        };
        row.cells.push(Cell {
            column: col.id,
            path: None,
            timestamp: p.timestamp,
            value: CellValue::Counter { value: delta },
        });
        return Ok(());
    }
    let invalid = |what: &str| {
        Err(CqlError::invalid(format!(
            "Invalid operation ({}) for {what} column {name}",
            operation_text(a)
        )))
    };
    let multicell = col.ty.is_multicell();
    match (&a.target, &a.value) {
        (ColumnTarget::Column(_), AssignValue::Set(t)) => {
            set_column(row, col, evaluate(&col.ty, t, name, binds)?, p)
        }
        (ColumnTarget::Column(_), AssignValue::Add(t) | AssignValue::Subtract(t)) => {
            let add = matches!(a.value, AssignValue::Add(_));
            match &col.ty {
                ty if ty.is_collection() && !multicell => invalid("frozen collection"),
                CqlType::List { .. } | CqlType::Set { .. } | CqlType::Map { .. } if add => {
                    if let Evaluated::Value(b) = evaluate(&col.ty, t, name, binds)? {
                        for (path, val) in value::multicell_elements(&col.ty, &b, p.timestamp)? {
                            row.cells
                                .extend(element_cell(col, path, Evaluated::Value(val), p));
                        }
                    }
                    Ok(())
                }
                CqlType::List { elem, .. } => {
                    if let Evaluated::Value(b) = evaluate(&col.ty, t, name, binds)? {
                        let Value::List(items) = codec::decode(&col.ty, &b)? else {
                            return Ok(());
                        };
                        let doomed: Vec<Bytes> = items.iter().map(codec::encode).collect();
                        for (path, v) in reader.elements(col)? {
                            if doomed.iter().any(|d| compare::compare(elem, d, &v).is_eq()) {
                                row.cells.push(element_tombstone(col, path, p));
                            }
                        }
                    }
                    Ok(())
                }
                CqlType::Set { .. } | CqlType::Map { .. } => {
                    let elems_ty = match &col.ty {
                        CqlType::Map { key, .. } => CqlType::Set {
                            elem: key.clone(),
                            frozen: false,
                        },
                        other => other.clone(),
                    };
                    if let Evaluated::Value(b) = evaluate(&elems_ty, t, name, binds)? {
                        for path in value::multicell_removal_paths(&col.ty, &b)? {
                            row.cells.push(element_tombstone(col, path, p));
                        }
                    }
                    Ok(())
                }
                CqlType::Tuple(_) | CqlType::Udt { .. } => invalid("tuple"),
                CqlType::Counter => Err(CqlError::invalid(
                    "Cannot mix counter and non counter columns in the same table",
                )),
                _ => invalid("non counter"),
            }
        }
        (ColumnTarget::Column(_), AssignValue::Prepend(t)) => match &col.ty {
            CqlType::List { frozen: false, .. } => {
                if let Evaluated::Value(b) = evaluate(&col.ty, t, name, binds)? {
                    let Value::List(items) = codec::decode(&col.ty, &b)? else {
                        return Ok(());
                    };
                    let paths = value::prepend_paths(p.timestamp, items.len());
                    for (path, v) in paths.into_iter().zip(&items) {
                        row.cells.extend(element_cell(
                            col,
                            path,
                            Evaluated::Value(codec::encode(v)),
                            p,
                        ));
                    }
                }
                Ok(())
            }
            CqlType::List { .. } => invalid("frozen list"),
            _ => invalid("non list"),
        },
        (ColumnTarget::Element(_, key), AssignValue::Set(t)) => match &col.ty {
            CqlType::Set { .. } => invalid("set"),
            ty if !ty.is_collection() => invalid("non collection"),
            _ if !multicell => invalid("frozen collection"),
            CqlType::Map {
                key: kt, value: vt, ..
            } => {
                let k = key_value(kt, key, name, binds)?;
                let path = value::map_path(kt, &k)?;
                row.cells
                    .extend(element_cell(col, path, evaluate(vt, t, name, binds)?, p));
                Ok(())
            }
            CqlType::List { elem, .. } => {
                let Some(idx) = list_index(key, name, binds)? else {
                    return Ok(());
                };
                let v = evaluate(elem, t, name, binds)?;
                let existing = reader.elements(col)?;
                if existing.is_empty() {
                    return Err(CqlError::invalid(
                        "Attempted to set an element on a list which is null",
                    ));
                }
                if idx < 0 || idx as usize >= existing.len() {
                    return Err(CqlError::invalid(format!(
                        "List index {idx} out of bound, list has size {}",
                        existing.len()
                    )));
                }
                let path = existing[idx as usize].0.clone();
                row.cells.extend(element_cell(col, path, v, p));
                Ok(())
            }
            _ => invalid("non collection"),
        },
        (ColumnTarget::Field(_, field), AssignValue::Set(t)) => match &col.ty {
            CqlType::Udt { def, frozen: false } => {
                let (i, (_, fty)) = def
                    .fields
                    .iter()
                    .enumerate()
                    .find(|(_, (n, _))| n == field)
                    .ok_or_else(|| {
                        CqlError::invalid(format!(
                            "UDT column {name} does not have a field named {field}"
                        ))
                    })?;
                let path = Bytes::copy_from_slice(&(i as u16).to_be_bytes());
                row.cells
                    .extend(element_cell(col, path, evaluate(fty, t, name, binds)?, p));
                Ok(())
            }
            CqlType::Udt { .. } => invalid("frozen UDT"),
            _ => invalid("non-UDT"),
        },
        _ => Err(CqlError::invalid(format!(
            "Invalid operation ({}) on column {name}",
            operation_text(a)
        ))),
    }
}

fn delete(ctx: &WriteContext, del: &DeleteStatement, binds: &Bound) -> CqlResult<Vec<Mutation>> {
    let table = stored_table(ctx, &del.table)?;
    check_no_conditions(del.conditions.is_some())?;
    if del.using.ttl.is_some() {
        return Err(CqlError::invalid("Cannot provide custom TTL for DELETE"));
    }
    let params = write_params(ctx, &table, &del.using, binds)?;
    let where_ = restrictions::analyze(&table, &del.where_clause, binds)?;
    check_write_where(&table, &where_)?;
    let keys = partition_keys(&table, &where_)?;
    let deletion = DeletionTime {
        marked_for_delete_at: params.timestamp,
        local_deletion_time: params.now,
    };
    let mut out = Vec::with_capacity(keys.len());

    if del.targets.is_empty() {
        let full = where_.full_clustering_keys(&table);
        let ranges = where_.clustering_ranges(&table)?;
        for pk in &keys {
            let mut m = new_mutation(&table, pk)?;
            match &full {
                Some(cks) if table.clustering_len > 0 => {
                    for ck in cks {
                        m.rows.push(Row {
                            clustering: clustering_bytes(&table, ck)?,
                            deletion: Some(deletion),
                            ..Default::default()
                        });
                    }
                }
                _ if ranges.is_empty() => m.partition_deletion = Some(deletion),
                _ => {
                    for r in &ranges {
                        m.range_tombstones.push(RangeTombstone {
                            range: r.clone(),
                            deletion,
                        });
                    }
                }
            }
            m.rows.sort_by(|a, b| a.clustering.cmp(&b.clustering));
            m.rows.dedup_by(|a, b| a.clustering == b.clustering);
            out.push(m);
        }
        return Ok(out);
    }

    let mut statics: Vec<(&ColumnDef, &ColumnTarget)> = Vec::new();
    let mut regulars: Vec<(&ColumnDef, &ColumnTarget)> = Vec::new();
    for target in &del.targets {
        let name = target_name(target);
        let col = table.column_or_err(name)?;
        if col.is_primary_key() {
            return Err(CqlError::invalid(format!(
                "Invalid identifier {name} for deletion (should not be a PRIMARY KEY part)"
            )));
        }
        check_deletion_target(col, target)?;
        if col.kind == ColumnKind::Static {
            statics.push((col, target));
        } else {
            regulars.push((col, target));
        }
    }
    let regular = !regulars.is_empty();
    let ckeys = match where_.full_clustering_keys(&table) {
        Some(k) => k,
        None if !regular => Vec::new(),
        None => {
            return Err(CqlError::invalid(
                "Range deletions are not supported for specific columns",
            ));
        }
    };
    for pk in &keys {
        let mut m = new_mutation(&table, pk)?;
        let mut static_row = Row::default();
        let mut reader = RowReader::new(ctx, &table, &m, Bytes::new());
        for (col, target) in &statics {
            delete_target(&mut static_row, col, target, &params, binds, &mut reader)?;
        }
        if regular {
            for ck in &ckeys {
                let clustering = clustering_bytes(&table, ck)?;
                let mut r = Row {
                    clustering: clustering.clone(),
                    ..Default::default()
                };
                let mut reader = RowReader::new(ctx, &table, &m, clustering);
                for (col, target) in &regulars {
                    delete_target(&mut r, col, target, &params, binds, &mut reader)?;
                }
                sort_row(&mut r);
                m.rows.push(r);
            }
        }
        sort_row(&mut static_row);
        if !static_row.cells.is_empty() || !static_row.complex_deletions.is_empty() {
            m.static_row = Some(static_row);
        }
        m.rows.sort_by(|a, b| a.clustering.cmp(&b.clustering));
        m.rows.dedup_by(|a, b| a.clustering == b.clustering);
        out.push(m);
    }
    Ok(out)
}

/// Cassandra's checks on `DELETE col[x]` and `DELETE col.f`, made before any read.
fn check_deletion_target(col: &ColumnDef, target: &ColumnTarget) -> CqlResult<()> {
    let name = &col.name;
    match target {
        ColumnTarget::Column(_) => Ok(()),
        ColumnTarget::Element(..) if !col.ty.is_collection() => Err(CqlError::invalid(format!(
            "Invalid deletion operation for non collection column {name}"
        ))),
        ColumnTarget::Element(..) if !col.ty.is_multicell() => Err(CqlError::invalid(format!(
            "Invalid deletion operation for frozen collection column {name}"
        ))),
        ColumnTarget::Element(..) => Ok(()),
        ColumnTarget::Field(_, field) => match &col.ty {
            CqlType::Udt { def, frozen: false } => {
                if def.fields.iter().any(|(n, _)| n == field) {
                    Ok(())
                } else {
                    Err(CqlError::invalid(format!(
                        "UDT column {name} does not have a field named {field}"
                    )))
                }
            }
            CqlType::Udt { .. } => Err(CqlError::invalid(format!(
                "Frozen UDT column {name} does not support field deletions"
            ))),
            _ => Err(CqlError::invalid(format!(
                "Invalid field deletion operation for non-UDT column {name}"
            ))),
        },
    }
}

fn delete_target(
    r: &mut Row,
    col: &ColumnDef,
    target: &ColumnTarget,
    params: &WriteParams,
    binds: &Bound,
    reader: &mut RowReader,
) -> CqlResult<()> {
    let name = &col.name;
    match target {
        ColumnTarget::Column(_) if col.ty.is_multicell() => r.complex_deletions.push((
            col.id,
            DeletionTime {
                marked_for_delete_at: params.timestamp,
                local_deletion_time: params.now,
            },
        )),
        ColumnTarget::Column(_) => r.cells.push(Cell {
            column: col.id,
            path: None,
            timestamp: params.timestamp,
            value: CellValue::Tombstone {
                local_deletion_time: params.now,
            },
        }),
        ColumnTarget::Element(_, key) => match &col.ty {
            CqlType::Map { key: kt, .. } | CqlType::Set { elem: kt, .. } => {
                let k = key_value(kt, key, name, binds)?;
                r.cells
                    .push(element_tombstone(col, value::map_path(kt, &k)?, params));
            }
            CqlType::List { .. } => {
                let Some(idx) = list_index(key, name, binds)? else {
                    return Ok(());
                };
                let existing = reader.elements(col)?;
                if existing.is_empty() {
                    return Err(CqlError::invalid(
                        "Attempted to delete an element from a list which is null",
                    ));
                }
                if idx < 0 || idx as usize >= existing.len() {
                    return Err(CqlError::invalid(format!(
                        "List index {idx} out of bound, list has size {}",
                        existing.len()
                    )));
                }
                r.cells.push(element_tombstone(
                    col,
                    existing[idx as usize].0.clone(),
                    params,
                ));
            }
            _ => check_deletion_target(col, target)?,
        },
        ColumnTarget::Field(_, field) => {
            if let CqlType::Udt { def, .. } = &col.ty
                && let Some(i) = def.fields.iter().position(|(n, _)| n == field)
            {
                r.cells.push(element_tombstone(
                    col,
                    Bytes::copy_from_slice(&(i as u16).to_be_bytes()),
                    params,
                ));
            }
        }
    }
    Ok(())
}

/// Merges `other` into `into` (same table and partition): used to apply a batch's
/// statements on one partition as one atomic mutation. Cells meet the engine's own
/// reconciliation, so a batch resolves timestamp ties exactly as storage would.
pub fn merge_into(into: &mut Mutation, other: Mutation) {
    into.partition_deletion = match (into.partition_deletion, other.partition_deletion) {
        (Some(a), Some(b)) => Some(if b.marked_for_delete_at > a.marked_for_delete_at {
            b
        } else {
            a
        }),
        (a, b) => a.or(b),
    };
    into.range_tombstones.extend(other.range_tombstones);
    if let Some(s) = other.static_row {
        match &mut into.static_row {
            Some(existing) => shoal_engine::reconcile::merge_row(existing, s),
            None => into.static_row = Some(s),
        }
    }
    for r in other.rows {
        match into
            .rows
            .binary_search_by(|x| x.clustering.cmp(&r.clustering))
        {
            Ok(i) => shoal_engine::reconcile::merge_row(&mut into.rows[i], r),
            Err(i) => into.rows.insert(i, r),
        }
    }
}
