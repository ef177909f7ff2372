//! Lightweight transactions: `INSERT ... IF NOT EXISTS`, `UPDATE`/`DELETE ... IF EXISTS |
//! IF conditions`, and conditional batches.
//!
//! This module owns the CQL semantics: which statements may be conditional, what the
//! conditions mean, which mutations a statement makes and what `[applied]` result the
//! client gets. The serial order per partition comes from a [`crate::paxos::Cas`]: Paxos
//! across replicas on a clustered node, a striped lock on a single node. Either way the
//! decision runs in one closure over the partition state that was read, so conditions are
//! evaluated by one code path. The write's timestamp is the ballot's, raised above every
//! timestamp read, so a conditional write is never shadowed by the state it was checked
//! against.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use shoal_engine::{
    ClusteringBound, ClusteringRange, Mutation, PartitionData, PartitionRange, ReadCommand, Row,
};

use super::binds::{Bound, resolve_table};
use super::current;
use super::modify::{self, WriteContext};
use super::restrictions::{self, Partitions, key_value};
use super::{Executor, Outcome, merge_mutations, now_seconds, value};
use crate::error::{Consistency, CqlError, CqlResult};
use crate::parser::ast::*;
use crate::paxos::{self, CasRequest};
use crate::protocol::{ColumnSpec, ResultBody, Rows, RowsMetadata};
use crate::schema::{ColumnDef, ColumnKind, Schema, TableDef};
use crate::types::literal::{BindSource, Evaluated, evaluate};
use crate::types::{CqlType, codec, compare};

/// The consistency levels of a conditional write: the Paxos phases' and the commit's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Levels {
    pub serial: Consistency,
    pub commit: Consistency,
}

impl Levels {
    /// From a request's consistency and serial consistency (SERIAL when absent, as the
    /// protocol defines), validated as Cassandra validates them before any work.
    pub fn of(consistency: Consistency, serial: Option<Consistency>) -> CqlResult<Levels> {
        Ok(Levels {
            serial: paxos::check_serial(serial.unwrap_or(Consistency::Serial))?,
            commit: paxos::check_commit(consistency)?,
        })
    }
}

/// Whether a statement carries `IF ...`.
pub fn has_conditions(s: &Statement) -> bool {
    match s {
        Statement::Insert(i) => i.if_not_exists,
        Statement::Update(u) => u.conditions.is_some(),
        Statement::Delete(d) => d.conditions.is_some(),
        Statement::Batch(b) => b.statements.iter().any(has_conditions),
        _ => false,
    }
}

/// The statement without its conditions, and the conditions.
fn split(s: &Statement) -> (Statement, Option<Check>) {
    let mut s = s.clone();
    let check = match &mut s {
        Statement::Insert(i) => std::mem::take(&mut i.if_not_exists).then_some(Check::NotExists),
        Statement::Update(u) => u.conditions.take().map(Check::from),
        Statement::Delete(d) => d.conditions.take().map(Check::from),
        _ => None,
    };
    (s, check)
}

#[derive(Debug)]
enum Check {
    NotExists,
    Exists,
    If(Vec<Condition>),
}

impl From<Conditions> for Check {
    fn from(c: Conditions) -> Self {
        match c {
            Conditions::IfExists => Check::Exists,
            Conditions::If(v) => Check::If(v),
        }
    }
}

/// One statement of a conditional write, resolved to its partition and row.
struct Item<'a> {
    keyspace: Option<String>,
    statement: Statement,
    bound: &'a Bound<'a>,
    check: Option<Check>,
    table: Arc<TableDef>,
    token: i64,
    key: Bytes,
    /// Empty for the static row (or the only row of a table without clustering columns).
    clustering: Bytes,
}

/// Runs a conditional INSERT, UPDATE or DELETE.
pub async fn execute(
    ex: &Executor,
    schema: &Arc<Schema>,
    keyspace: Option<&str>,
    statement: &Statement,
    bound: &Bound<'_>,
    levels: Levels,
) -> CqlResult<Outcome> {
    if let Statement::Batch(b) = statement {
        if b.using.timestamp.is_some() {
            return Err(CqlError::invalid(
                "Cannot provide custom timestamp for conditional BATCH",
            ));
        }
        if b.using.ttl.is_some() {
            return Err(CqlError::invalid(
                "Global TTL on the BATCH statement is not supported.",
            ));
        }
        let children: Vec<(Option<String>, &Statement, &Bound)> = b
            .statements
            .iter()
            .map(|s| (keyspace.map(str::to_string), s, bound))
            .collect();
        return execute_batch(ex, schema, b.kind, &children, levels).await;
    }
    let item = resolve(
        ex,
        schema,
        keyspace.map(str::to_string),
        statement,
        bound,
        false,
    )?;
    run(ex, schema, vec![item], false, levels).await
}

/// Runs a batch holding at least one conditional statement.
pub async fn execute_batch(
    ex: &Executor,
    schema: &Arc<Schema>,
    kind: BatchKind,
    children: &[(Option<String>, &Statement, &Bound<'_>)],
    levels: Levels,
) -> CqlResult<Outcome> {
    let tables: Vec<(Option<String>, &Statement)> =
        children.iter().map(|(k, s, _)| (k.clone(), *s)).collect();
    modify::check_batch_kind(schema, kind, &tables)?;
    let mut items = Vec::with_capacity(children.len());
    for (ks, s, b) in children {
        items.push(resolve(ex, schema, ks.clone(), s, b, true)?);
    }
    let first = &items[0];
    for it in &items[1..] {
        if it.table.id != first.table.id {
            return Err(CqlError::invalid(
                "Batch with conditions cannot span multiple tables",
            ));
        }
        if it.key != first.key {
            return Err(CqlError::invalid(
                "Batch with conditions cannot span multiple partitions",
            ));
        }
    }
    run(ex, schema, items, true, levels).await
}

fn resolve<'a>(
    ex: &Executor,
    schema: &Schema,
    keyspace: Option<String>,
    statement: &Statement,
    bound: &'a Bound<'a>,
    in_batch: bool,
) -> CqlResult<Item<'a>> {
    let (stripped, check) = split(statement);
    let (name, using, where_clause, what) = match &stripped {
        Statement::Insert(i) => (&i.table, &i.using, None, "updates"),
        Statement::Update(u) => (&u.table, &u.using, Some(&u.where_clause), "updates"),
        Statement::Delete(d) => (&d.table, &d.using, Some(&d.where_clause), "deletions"),
        _ => {
            return Err(CqlError::invalid(
                "Invalid statement in batch: only UPDATE, INSERT and DELETE statements are allowed.",
            ));
        }
    };
    let table = resolve_table(schema, keyspace.as_deref(), name)?;
    if let Some(Check::If(conds)) = &check
        && conds.iter().any(|c| {
            table
                .column(target_name(&c.target))
                .is_some_and(|col| col.ty == CqlType::Counter)
        })
    {
        return Err(CqlError::invalid(
            "Conditions on counters are not supported",
        ));
    }
    if check.is_some() {
        if table.is_counter {
            return Err(CqlError::invalid(
                "Conditional updates are not supported on counter tables",
            ));
        }
        if using.timestamp.is_some() {
            return Err(CqlError::invalid(
                "Cannot provide custom timestamp for conditional updates",
            ));
        }
    }
    let (token, key, clustering) = match where_clause {
        None => {
            // INSERT names its whole key: building its mutation finds partition and row.
            let ctx = WriteContext {
                executor: ex,
                schema,
                keyspace: keyspace.as_deref(),
                timestamp: Some(0),
                batch_timestamp: None,
            };
            let m = modify::mutations_for(&ctx, &stripped, bound)?;
            let m = m
                .into_iter()
                .next()
                .ok_or_else(|| CqlError::server("INSERT without a mutation"))?;
            let ck = m
                .rows
                .first()
                .map(|r| r.clustering.clone())
                .unwrap_or_default();
            (m.token, m.key, ck)
        }
        Some(where_clause) => {
            let where_ = restrictions::analyze(&table, where_clause, bound)?;
            let keys = match &where_.partitions {
                Partitions::Keys(k) => k.clone(),
                Partitions::Scan { .. } => {
                    let missing: Vec<&str> = table
                        .partition_key()
                        .iter()
                        .map(|c| c.name.as_str())
                        .collect();
                    return Err(CqlError::invalid(format!(
                        "Some partition key parts are missing: {}",
                        missing.join(", ")
                    )));
                }
            };
            if keys.len() != 1 {
                return Err(CqlError::invalid(if in_batch {
                    "Batch with conditions cannot span multiple partitions".to_string()
                } else {
                    format!("IN on the partition key is not supported with conditional {what}")
                }));
            }
            let m = modify::new_mutation(&table, &keys[0])?;
            let ck = match where_.full_clustering_keys(&table) {
                Some(cks) if cks.len() > 1 => {
                    return Err(CqlError::invalid(format!(
                        "IN on the clustering key columns is not supported with conditional {what}"
                    )));
                }
                Some(cks) => modify::clustering_bytes(&table, &cks[0])?,
                None => {
                    if check.is_some()
                        && matches!(&stripped, Statement::Delete(d) if d.targets.is_empty())
                    {
                        return Err(CqlError::invalid(
                            "DELETE statements must restrict all PRIMARY KEY columns with equality relations in order to delete non static columns",
                        ));
                    }
                    Bytes::new()
                }
            };
            (m.token, m.key, ck)
        }
    };
    Ok(Item {
        keyspace,
        statement: stripped,
        bound,
        check,
        table,
        token,
        key,
        clustering,
    })
}

/// What was read: the static row and each row a statement addresses.
struct State {
    static_row: Option<Row>,
    rows: BTreeMap<Bytes, Option<Row>>,
    max_timestamp: i64,
}

impl State {
    fn row(&self, col: &ColumnDef, clustering: &Bytes) -> Option<&Row> {
        if col.kind == ColumnKind::Static {
            self.static_row.as_ref()
        } else {
            self.rows.get(clustering).and_then(|r| r.as_ref())
        }
    }
}

/// The read a conditional write needs: the static row and every row a statement addresses.
fn read_command(table: &TableDef, token: i64, key: &Bytes, clusterings: &[Bytes]) -> ReadCommand {
    let slices: Vec<ClusteringRange> = clusterings
        .iter()
        .filter(|ck| !ck.is_empty())
        .map(|ck| ClusteringRange {
            start: ClusteringBound {
                prefix: ck.clone(),
                inclusive: true,
            },
            end: ClusteringBound {
                prefix: ck.clone(),
                inclusive: true,
            },
        })
        .collect();
    // Statements addressing only the static row of a table with rows need no rows: the
    // static row comes with any row, so one is enough.
    let static_only = slices.is_empty() && table.clustering_len > 0;
    let limit = if static_only { 1 } else { usize::MAX };
    ReadCommand {
        table: table.engine_id(),
        partitions: PartitionRange::Single {
            token,
            key: key.clone(),
        },
        slices,
        reversed: false,
        start_after_row: None,
        row_limit: limit,
        per_partition_limit: limit,
        partition_limit: 1,
        include_tombstones: false,
        now: now_seconds(),
    }
}

fn state_of(p: &PartitionData, clusterings: &[Bytes]) -> State {
    State {
        static_row: p.static_row.clone(),
        rows: clusterings
            .iter()
            .map(|ck| {
                let row = p.rows.iter().find(|r| r.clustering == ck).cloned();
                (ck.clone(), row)
            })
            .collect(),
        max_timestamp: current::partition_max_timestamp(p),
    }
}

/// Whether every statement's conditions hold, and if so the mutations to propose at
/// `ballot` (µs).
fn decide(
    ex: &Executor,
    schema: &Schema,
    items: &[Item<'_>],
    state: &State,
    ballot: i64,
) -> CqlResult<Option<Vec<Mutation>>> {
    let table = &items[0].table;
    let mut applies = true;
    for it in items {
        if let Some(check) = &it.check
            && !check_applies(table, check, it, state)?
        {
            applies = false;
        }
    }
    if !applies {
        return Ok(None);
    }
    let ts = ballot.max(state.max_timestamp.saturating_add(1));
    let mut mutations = Vec::new();
    for it in items {
        let ctx = WriteContext {
            executor: ex,
            schema,
            keyspace: it.keyspace.as_deref(),
            timestamp: Some(ts),
            batch_timestamp: None,
        };
        mutations.extend(modify::mutations_for(&ctx, &it.statement, it.bound)?);
    }
    Ok(Some(merge_mutations(mutations)))
}

async fn run(
    ex: &Executor,
    schema: &Arc<Schema>,
    items: Vec<Item<'_>>,
    is_batch: bool,
    levels: Levels,
) -> CqlResult<Outcome> {
    let table = items[0].table.clone();
    let (token, key) = (items[0].token, items[0].key.clone());
    let mut clusterings: Vec<Bytes> = items.iter().map(|i| i.clustering.clone()).collect();
    clusterings.sort();
    clusterings.dedup();

    // What the last decision saw and concluded; a pre-empted Paxos round decides again.
    let mut outcome: Option<(bool, State)> = None;
    {
        let (items, clusterings, outcome) = (&items, &clusterings, &mut outcome);
        let req = CasRequest {
            table: table.engine_id(),
            token,
            key: key.clone(),
            read: read_command(&table, token, &key, clusterings),
            serial: levels.serial,
            commit: levels.commit,
            decide: Box::new(move |p: &PartitionData, ballot: i64| {
                let state = state_of(p, clusterings);
                let result = decide(ex, schema, items, &state, ballot)?;
                *outcome = Some((result.is_some(), state));
                Ok(result)
            }),
        };
        match ex.cas() {
            Some(cas) if !super::is_node_local(schema, table.engine_id()) => {
                cas.cas(schema.clone(), req).await?
            }
            _ => paxos::local_cas(ex, req).await?,
        }
    }
    let Some((applies, state)) = outcome else {
        return Err(CqlError::server(
            "conditional write finished without a decision",
        ));
    };

    let applied_spec = ColumnSpec {
        keyspace: table.keyspace.clone(),
        table: table.name.clone(),
        name: "[applied]".into(),
        ty: CqlType::Boolean,
    };
    if applies {
        return Ok(Outcome::new(ResultBody::Rows(Rows {
            metadata: RowsMetadata {
                columns: vec![applied_spec],
                ..Default::default()
            },
            rows: vec![vec![Some(bool_bytes(true))]],
        })));
    }

    // Not applied: the current values of the columns the conditions name (every column
    // after IF [NOT] EXISTS), as Cassandra's buildCasFailureResultSet selects them.
    let wildcard = items
        .iter()
        .any(|i| matches!(i.check, Some(Check::Exists | Check::NotExists)));
    let columns: Vec<usize> = if wildcard {
        (0..table.columns.len()).collect()
    } else {
        let mut regular = Vec::new();
        let mut statics = Vec::new();
        if is_batch {
            regular.extend((0..table.columns.len()).filter(|&i| table.columns[i].is_primary_key()));
        }
        for it in &items {
            if let Some(Check::If(conds)) = &it.check {
                for c in conds {
                    let name = target_name(&c.target);
                    let i = table.column_index_or_err(name)?;
                    let list = if table.columns[i].kind == ColumnKind::Static {
                        &mut statics
                    } else {
                        &mut regular
                    };
                    list.push(i);
                }
            }
        }
        let mut out: Vec<usize> = Vec::new();
        for i in regular.into_iter().chain(statics) {
            if !out.contains(&i) {
                out.push(i);
            }
        }
        out
    };
    let pk_parts = shoal_gossip::partitioner::split_key(&key, table.partition_key_len)
        .ok_or_else(|| CqlError::server("corrupt partition key"))?;
    let static_live = state.static_row.as_ref().is_some_and(current::row_is_live);
    let mut out_rows = Vec::new();
    let mut emit = |row: Option<&Row>, clustering: Option<&Bytes>| -> CqlResult<()> {
        let cks = match clustering {
            Some(c) if !c.is_empty() => {
                crate::types::bytecomp::decode_components(&table.clustering_types(), c)?
            }
            _ => Vec::new(),
        };
        let mut values = vec![Some(bool_bytes(false))];
        for &i in &columns {
            let col = &table.columns[i];
            values.push(match col.kind {
                ColumnKind::PartitionKey => pk_parts
                    .get(col.position as usize)
                    .map(|p| Bytes::copy_from_slice(p)),
                ColumnKind::Clustering => cks.get(col.position as usize).cloned(),
                ColumnKind::Static => current::column_value(state.static_row.as_ref(), col)?,
                _ => current::column_value(row, col)?,
            });
        }
        out_rows.push(values);
        Ok(())
    };
    let mut any_row = false;
    for (ck, row) in &state.rows {
        if let Some(r) = row
            && current::row_is_live(r)
            && (table.clustering_len == 0 || !ck.is_empty())
        {
            any_row = true;
            emit(Some(r), Some(ck))?;
        }
    }
    if !any_row && static_live {
        emit(None, None)?;
    }
    let mut specs = vec![applied_spec];
    if !out_rows.is_empty() {
        specs.extend(columns.iter().map(|&i| ColumnSpec {
            keyspace: table.keyspace.clone(),
            table: table.name.clone(),
            name: table.columns[i].name.clone(),
            ty: table.columns[i].ty.clone(),
        }));
    } else {
        out_rows.push(vec![Some(bool_bytes(false))]);
    }
    Ok(Outcome::new(ResultBody::Rows(Rows {
        metadata: RowsMetadata {
            columns: specs,
            ..Default::default()
        },
        rows: out_rows,
    })))
}

fn bool_bytes(b: bool) -> Bytes {
    Bytes::copy_from_slice(&[u8::from(b)])
}

fn target_name(t: &ColumnTarget) -> &String {
    match t {
        ColumnTarget::Column(n) | ColumnTarget::Element(n, _) | ColumnTarget::Field(n, _) => n,
    }
}

fn check_applies(table: &TableDef, check: &Check, it: &Item, state: &State) -> CqlResult<bool> {
    // A statement without a clustering key on a table with rows addresses the static row.
    let addressed = if it.clustering.is_empty() && table.clustering_len > 0 {
        state.static_row.as_ref()
    } else {
        state.rows.get(&it.clustering).and_then(|r| r.as_ref())
    };
    let exists = addressed.is_some_and(current::row_is_live);
    match check {
        Check::NotExists => Ok(!exists),
        Check::Exists => Ok(exists),
        Check::If(conds) => {
            let mut ok = true;
            for c in conds {
                if !condition_holds(table, c, it, state)? {
                    ok = false;
                }
            }
            Ok(ok)
        }
    }
}

/// Cassandra's ColumnCondition: equality treats two nulls as equal, order comparisons
/// against a null current value are false, and a null operand is refused for them.
fn condition_holds(table: &TableDef, c: &Condition, it: &Item, state: &State) -> CqlResult<bool> {
    let name = target_name(&c.target);
    let col = table.column_or_err(name)?;
    if col.is_primary_key() {
        return Err(CqlError::invalid(format!(
            "PRIMARY KEY column '{name}' cannot have IF conditions"
        )));
    }
    let row = state.row(col, &it.clustering);
    let binds = it.bound;
    let (ty, current): (CqlType, Option<Bytes>) = match &c.target {
        ColumnTarget::Column(_) => (col.ty.frozen(), current::column_value(row, col)?),
        ColumnTarget::Element(_, k) => match &col.ty {
            CqlType::Map {
                key: kt, value: vt, ..
            } => {
                let k = key_value(kt, k, name, binds)?;
                let v = if col.ty.is_multicell() {
                    let path = value::map_path(kt, &k)?;
                    current::elements(row, col)
                        .into_iter()
                        .find(|(p, _)| p == &path)
                        .map(|(_, v)| v)
                } else {
                    match current::column_value(row, col)? {
                        Some(b) => match codec::decode(&col.ty, &b)? {
                            crate::types::Value::Map(entries) => entries
                                .into_iter()
                                .find(|(ek, _)| {
                                    compare::compare(kt, &codec::encode(ek), &k).is_eq()
                                })
                                .map(|(_, v)| codec::encode(&v)),
                            _ => None,
                        },
                        None => None,
                    }
                };
                ((**vt).clone(), v)
            }
            CqlType::List { elem, .. } => {
                let idx = match evaluate(&CqlType::Int, k, name, binds)? {
                    Evaluated::Value(b) if b.len() == 4 => {
                        i32::from_be_bytes([b[0], b[1], b[2], b[3]]) as i64
                    }
                    _ => {
                        return Err(CqlError::invalid(format!(
                            "Invalid null value for list element access on {name}"
                        )));
                    }
                };
                let items: Vec<Bytes> = if col.ty.is_multicell() {
                    current::elements(row, col)
                        .into_iter()
                        .map(|(_, v)| v)
                        .collect()
                } else {
                    match current::column_value(row, col)? {
                        Some(b) => match codec::decode(&col.ty, &b)? {
                            crate::types::Value::List(v) => v.iter().map(codec::encode).collect(),
                            _ => Vec::new(),
                        },
                        None => Vec::new(),
                    }
                };
                let v = usize::try_from(idx)
                    .ok()
                    .and_then(|i| items.get(i).cloned());
                ((**elem).clone(), v)
            }
            _ => {
                return Err(CqlError::invalid(format!(
                    "Invalid element access syntax for non-collection column {name}"
                )));
            }
        },
        ColumnTarget::Field(_, f) => match &col.ty {
            CqlType::Udt { def, .. } => {
                let (i, (_, fty)) = def
                    .fields
                    .iter()
                    .enumerate()
                    .find(|(_, (n, _))| n == f)
                    .ok_or_else(|| {
                        CqlError::invalid(format!("Unknown field {f} for column {name}"))
                    })?;
                let v = match current::column_value(row, col)? {
                    Some(b) => match codec::decode(&col.ty, &b)? {
                        crate::types::Value::Udt(fields) => fields
                            .into_iter()
                            .nth(i)
                            .and_then(|(_, v)| v)
                            .map(|v| codec::encode(&v)),
                        _ => None,
                    },
                    None => None,
                };
                (fty.clone(), v)
            }
            _ => {
                return Err(CqlError::invalid(format!(
                    "Invalid field access for non-UDT column {name}"
                )));
            }
        },
    };
    let operand = |t: &Term| -> CqlResult<Option<Bytes>> {
        Ok(match evaluate(&ty, t, name, binds)? {
            Evaluated::Value(b) => {
                // An empty non-frozen collection does not exist: it compares as null.
                if col.ty.is_multicell()
                    && matches!(c.target, ColumnTarget::Column(_))
                    && b.len() == 4
                    && b.as_ref() == [0, 0, 0, 0]
                {
                    None
                } else {
                    Some(b)
                }
            }
            Evaluated::Null => None,
            Evaluated::Unset => {
                return Err(CqlError::invalid(format!(
                    "Invalid 'unset' value in condition for column {name}"
                )));
            }
        })
    };
    let eq = |v: &Option<Bytes>| match (v, &current) {
        (None, None) => true,
        (Some(a), Some(b)) => compare::compare(&ty, a, b).is_eq(),
        _ => false,
    };
    match (c.op, &c.value) {
        (Operator::Eq, RelationValue::Single(t)) => Ok(eq(&operand(t)?)),
        (Operator::Ne, RelationValue::Single(t)) => Ok(!eq(&operand(t)?)),
        (Operator::In, RelationValue::InList(ts)) => {
            for t in ts {
                if eq(&operand(t)?) {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        (Operator::In, RelationValue::InMarker(m)) => {
            let list_ty = CqlType::List {
                elem: Box::new(ty.clone()),
                frozen: true,
            };
            match binds.bound(m)? {
                Evaluated::Value(b) => match codec::decode(&list_ty, &b)? {
                    crate::types::Value::List(items) => {
                        Ok(items.iter().any(|v| eq(&Some(codec::encode(v)))))
                    }
                    _ => Ok(false),
                },
                _ => Err(CqlError::invalid(format!(
                    "Invalid null list in IN condition for column {name}"
                ))),
            }
        }
        (
            op @ (Operator::Lt | Operator::Le | Operator::Gt | Operator::Ge),
            RelationValue::Single(t),
        ) => {
            let Some(v) = operand(t)? else {
                return Err(CqlError::invalid(format!(
                    "Invalid comparison with null for operator \"{}\"",
                    op_text(op)
                )));
            };
            let Some(cur) = &current else {
                return Ok(false);
            };
            let ord = compare::compare(&ty, cur, &v);
            Ok(match op {
                Operator::Lt => ord.is_lt(),
                Operator::Le => ord.is_le(),
                Operator::Gt => ord.is_gt(),
                _ => ord.is_ge(),
            })
        }
        (op, _) => Err(CqlError::invalid(format!(
            "Unsupported operator {} in the condition on column {name}",
            op_text(op)
        ))),
    }
}

fn op_text(op: Operator) -> &'static str {
    match op {
        Operator::Eq => "=",
        Operator::Ne => "!=",
        Operator::Lt => "<",
        Operator::Le => "<=",
        Operator::Gt => ">",
        Operator::Ge => ">=",
        Operator::In => "IN",
        Operator::Contains => "CONTAINS",
        Operator::ContainsKey => "CONTAINS KEY",
        Operator::Like => "LIKE",
        Operator::IsNot => "IS NOT",
    }
}
