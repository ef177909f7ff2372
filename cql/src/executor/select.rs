//! SELECT: selection, restrictions pushed to the engine, filtering, ordering, limits,
//! aggregates and paging, over stored tables and the node's virtual tables alike.

use std::cmp::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use shoal_engine::{CellValue, PartitionData, PartitionPosition, PartitionRange, ReadCommand, Row};

use super::binds::{Bound, resolve_table};
use super::paging::{PagingState, Position};
use super::restrictions::{self, ALLOW_FILTERING_MSG, Partitions, Where};
use super::{Executor, Outcome, engine_error, index, now_seconds, system_views, value};
use crate::error::{Consistency, CqlError, CqlResult};
use crate::parser::ast::*;
use crate::protocol::{ColumnSpec, QueryParameters, ResultBody, Rows, RowsMetadata};
use crate::schema::{ColumnKind, Schema, TableDef, TableSource};
use crate::types::functions::NativeFunction;
use crate::types::literal::{Evaluated, evaluate};
use crate::types::{CqlType, bytecomp, codec, compare, json};

/// One row as read, before selection: a value per table column plus cell metadata.
#[derive(Clone, Debug, Default)]
pub struct RawRow {
    pub values: Vec<Option<Bytes>>,
    /// Write timestamp of each simple column's cell (µs).
    pub writetimes: Vec<Option<i64>>,
    /// Remaining TTL of each simple column's cell (s).
    pub ttls: Vec<Option<i32>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AggKind {
    Count,
    Min,
    Max,
    Sum,
    Avg,
}

#[derive(Clone, Debug)]
enum Expr {
    Column(usize),
    WriteTime(usize),
    Ttl(usize),
    CountStar,
    Aggregate {
        kind: AggKind,
        arg: Box<Expr>,
        ty: CqlType,
    },
    Function {
        f: NativeFunction,
        args: Vec<Expr>,
    },
    Token(Vec<usize>),
    Cast {
        arg: Box<Expr>,
        from: CqlType,
        to: CqlType,
    },
    Field {
        arg: Box<Expr>,
        index: usize,
    },
    ToJson {
        arg: Box<Expr>,
        ty: CqlType,
    },
    Const(Option<Bytes>),
}

impl Expr {
    fn is_aggregate(&self) -> bool {
        match self {
            Expr::CountStar | Expr::Aggregate { .. } => true,
            Expr::Function { args, .. } => args.iter().any(Expr::is_aggregate),
            Expr::Cast { arg, .. } | Expr::Field { arg, .. } | Expr::ToJson { arg, .. } => {
                arg.is_aggregate()
            }
            _ => false,
        }
    }
}

struct Selection {
    exprs: Vec<Expr>,
    specs: Vec<ColumnSpec>,
    aggregate: bool,
    /// SELECT JSON: the selected columns folded into one `[json]` text column.
    json: Option<Vec<ColumnSpec>>,
}

fn spec(table: &TableDef, name: String, ty: CqlType) -> ColumnSpec {
    ColumnSpec {
        keyspace: table.keyspace.clone(),
        table: table.name.clone(),
        name,
        ty,
    }
}

fn column(table: &TableDef, name: &str) -> CqlResult<usize> {
    table.column_index_or_err(name)
}

/// Turns one selector into an expression, its result type and its default column name.
fn selector(table: &TableDef, s: &Selector, binds: &Bound) -> CqlResult<(Expr, CqlType, String)> {
    Ok(match s {
        Selector::Column(name) => {
            let i = column(table, name)?;
            (Expr::Column(i), table.columns[i].ty.clone(), name.clone())
        }
        Selector::WriteTime(name) | Selector::Ttl(name) => {
            let i = column(table, name)?;
            let col = &table.columns[i];
            let is_wt = matches!(s, Selector::WriteTime(_));
            let what = if is_wt { "writetime" } else { "ttl" };
            if col.is_primary_key() {
                return Err(CqlError::invalid(format!(
                    "Cannot use selection function {what} on PRIMARY KEY part {name}"
                )));
            }
            if col.ty.is_multicell() {
                return Err(CqlError::invalid(format!(
                    "Cannot use selection function {what} on non-frozen collection {name}"
                )));
            }
            if is_wt {
                (
                    Expr::WriteTime(i),
                    CqlType::Bigint,
                    format!("writetime({name})"),
                )
            } else {
                (Expr::Ttl(i), CqlType::Int, format!("ttl({name})"))
            }
        }
        Selector::CountStar => (Expr::CountStar, CqlType::Bigint, "count".into()),
        Selector::Function { name, args } => {
            let fname = name.name.to_ascii_lowercase();
            if fname == "token" {
                let mut idxs = Vec::new();
                for a in args {
                    match a {
                        Selector::Column(c) => idxs.push(column(table, c)?),
                        _ => return Err(CqlError::invalid("token() only accepts column names")),
                    }
                }
                let expected: Vec<usize> = (0..table.partition_key_len).collect();
                if idxs != expected {
                    return Err(CqlError::invalid(format!(
                        "Type error: token() arguments must be the partition key columns in order: {}",
                        table
                            .partition_key()
                            .iter()
                            .map(|c| c.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
                let names: Vec<&str> = idxs
                    .iter()
                    .map(|i| table.columns[*i].name.as_str())
                    .collect();
                return Ok((
                    Expr::Token(idxs),
                    CqlType::Bigint,
                    format!("system.token({})", names.join(", ")),
                ));
            }
            if fname == "tojson" {
                if args.len() != 1 {
                    return Err(CqlError::invalid(format!(
                        "toJson() only accepts one argument (got {})",
                        args.len()
                    )));
                }
                let (arg, ty, aname) = selector(table, &args[0], binds)?;
                return Ok((
                    Expr::ToJson {
                        arg: Box::new(arg),
                        ty,
                    },
                    CqlType::Text,
                    format!("system.tojson({aname})"),
                ));
            }
            if fname == "fromjson" {
                return Err(CqlError::invalid(
                    "fromJson() cannot be used in the selection clause of a SELECT statement",
                ));
            }
            let agg = match fname.as_str() {
                "count" => Some(AggKind::Count),
                "min" => Some(AggKind::Min),
                "max" => Some(AggKind::Max),
                "sum" => Some(AggKind::Sum),
                "avg" => Some(AggKind::Avg),
                _ => None,
            };
            if let Some(kind) = agg {
                if args.len() != 1 {
                    return Err(CqlError::invalid(format!(
                        "Invalid number of arguments in call to function system.{fname}: 1 required but {} provided",
                        args.len()
                    )));
                }
                if kind == AggKind::Count
                    && matches!(&args[0], Selector::Term(Term::Literal(Literal::Integer(_))))
                {
                    return Ok((Expr::CountStar, CqlType::Bigint, "count".into()));
                }
                let (arg, ty, aname) = selector(table, &args[0], binds)?;
                let out_ty = if kind == AggKind::Count {
                    CqlType::Bigint
                } else {
                    ty.clone()
                };
                if matches!(kind, AggKind::Sum | AggKind::Avg) && !is_numeric(&ty) {
                    return Err(CqlError::invalid(format!(
                        "Invalid call to function system.{fname}, none of its type signatures match (known type signatures: system.{fname} : (tinyint) -> tinyint, ...)"
                    )));
                }
                return Ok((
                    Expr::Aggregate {
                        kind,
                        arg: Box::new(arg),
                        ty,
                    },
                    out_ty,
                    format!("system.{fname}({aname})"),
                ));
            }
            let mut exprs = Vec::new();
            let mut types = Vec::new();
            let mut names = Vec::new();
            for a in args {
                let (e, t, n) = selector(table, a, binds)?;
                exprs.push(e);
                types.push(Some(t));
                names.push(n);
            }
            let f = crate::types::functions::resolve(&name.name, &types, None)?;
            let ret = f.return_type.clone();
            let display = format!("{}({})", f.name, names.join(", "));
            (Expr::Function { f, args: exprs }, ret, display)
        }
        Selector::Cast {
            selector: inner,
            ty,
        } => {
            let (e, from, n) = selector(table, inner, binds)?;
            let to = resolve_native(ty)?;
            let name = format!("cast({n} as {})", to.cql_name());
            (
                Expr::Cast {
                    arg: Box::new(e),
                    from,
                    to: to.clone(),
                },
                to,
                name,
            )
        }
        Selector::Field {
            selector: inner,
            field,
        } => {
            let (e, ty, n) = selector(table, inner, binds)?;
            let CqlType::Udt { def, .. } = &ty else {
                return Err(CqlError::invalid(format!(
                    "Invalid field selection: {n} of type {} is not a user type",
                    ty.cql_name()
                )));
            };
            let index = def
                .fields
                .iter()
                .position(|(f, _)| f == field)
                .ok_or_else(|| {
                    CqlError::invalid(format!("{} of type {} has no field {field}", n, def.name))
                })?;
            let fty = def.fields[index].1.clone();
            (
                Expr::Field {
                    arg: Box::new(e),
                    index,
                },
                fty,
                format!("{n}.{field}"),
            )
        }
        Selector::Term(t) => {
            let v = match evaluate(&CqlType::Blob, t, "selector", binds)? {
                Evaluated::Value(b) => Some(b),
                _ => None,
            };
            (Expr::Const(v), CqlType::Blob, "selector".into())
        }
    })
}

fn resolve_native(ty: &TypeExpr) -> CqlResult<CqlType> {
    match ty {
        TypeExpr::Native(n) => CqlType::from_native_name(n)
            .ok_or_else(|| CqlError::invalid(format!("Unknown type {n}"))),
        other => Err(CqlError::invalid(format!("Cannot cast to {other:?}"))),
    }
}

fn is_numeric(ty: &CqlType) -> bool {
    matches!(
        ty,
        CqlType::Tinyint
            | CqlType::Smallint
            | CqlType::Int
            | CqlType::Bigint
            | CqlType::Varint
            | CqlType::Float
            | CqlType::Double
            | CqlType::Decimal
            | CqlType::Counter
    )
}

fn build_selection(table: &TableDef, s: &SelectStatement, binds: &Bound) -> CqlResult<Selection> {
    let mut exprs = Vec::new();
    let mut specs = Vec::new();
    if s.selection.is_empty() {
        for (i, c) in table.columns.iter().enumerate() {
            if s.distinct && !matches!(c.kind, ColumnKind::PartitionKey | ColumnKind::Static) {
                continue;
            }
            exprs.push(Expr::Column(i));
            specs.push(spec(table, c.name.clone(), c.ty.clone()));
        }
    } else {
        for item in &s.selection {
            let (e, ty, name) = selector(table, &item.selector, binds)?;
            exprs.push(e);
            specs.push(spec(table, item.alias.clone().unwrap_or(name), ty));
        }
    }
    if s.distinct {
        for e in &exprs {
            if let Expr::Column(i) = e
                && !matches!(
                    table.columns[*i].kind,
                    ColumnKind::PartitionKey | ColumnKind::Static
                )
            {
                return Err(CqlError::invalid(format!(
                    "SELECT DISTINCT queries must only request partition key columns and/or static columns (not {})",
                    table.columns[*i].name
                )));
            }
        }
    }
    let aggregate = exprs.iter().any(Expr::is_aggregate);
    let json = s.json.then(|| {
        std::mem::replace(
            &mut specs,
            vec![spec(table, "[json]".into(), CqlType::Text)],
        )
    });
    Ok(Selection {
        exprs,
        specs,
        aggregate,
        json,
    })
}

/// The result metadata of a prepared SELECT.
pub fn result_metadata(
    _ex: &Executor,
    schema: &Schema,
    keyspace: Option<&str>,
    s: &SelectStatement,
) -> CqlResult<RowsMetadata> {
    let table = resolve_table(schema, keyspace, &s.table)?;
    let sel = build_selection(&table, s, &Bound::empty())?;
    Ok(RowsMetadata {
        columns: sel.specs,
        ..Default::default()
    })
}

fn limit_value(term: &Option<Term>, name: &str, binds: &Bound) -> CqlResult<Option<usize>> {
    let Some(t) = term else { return Ok(None) };
    match evaluate(&CqlType::Int, t, name, binds)? {
        Evaluated::Value(b) => {
            let v = i32::from_be_bytes(
                b.as_ref()
                    .try_into()
                    .map_err(|_| CqlError::invalid("Invalid limit value"))?,
            );
            if v <= 0 {
                let what = if name == "[limit]" {
                    "LIMIT"
                } else {
                    "PER PARTITION LIMIT"
                };
                return Err(CqlError::invalid(format!(
                    "{what} must be strictly positive"
                )));
            }
            Ok(Some(v as usize))
        }
        Evaluated::Null => Err(CqlError::invalid("Invalid null value of limit")),
        Evaluated::Unset => Ok(None),
    }
}

/// Executes a SELECT.
pub async fn execute(
    ex: &Executor,
    schema: &Arc<Schema>,
    keyspace: Option<&str>,
    s: &SelectStatement,
    binds: &Bound<'_>,
    params: &QueryParameters,
) -> CqlResult<Outcome> {
    let table = resolve_table(schema, keyspace, &s.table)?;
    let sel = build_selection(&table, s, binds)?;
    let group_len = group_by_len(&table, &s.group_by)?;
    let where_ = restrictions::analyze(&table, &s.where_clause, binds)?;
    let virtual_table = table.source == TableSource::Virtual;
    let index_plan = if virtual_table {
        None
    } else {
        index::plan(&table, &where_)
    };
    let needs_filtering = match &index_plan {
        Some(plan) => index::needs_filtering(&table, &where_, plan),
        None => where_.needs_filtering,
    };
    if needs_filtering && !s.allow_filtering && !virtual_table {
        let reason = match &index_plan {
            Some(_) => ALLOW_FILTERING_MSG.to_string(),
            None => where_
                .filtering_reason
                .clone()
                .unwrap_or_else(|| ALLOW_FILTERING_MSG.into()),
        };
        return Err(CqlError::invalid(reason));
    }
    // Reading through the index pays off only when no partition is named.
    let index_plan = index_plan.filter(|_| {
        matches!(
            where_.partitions,
            Partitions::Scan {
                start: None,
                end: None
            }
        )
    });
    if index_plan.is_some() && !s.order_by.is_empty() {
        return Err(CqlError::invalid(
            "ORDER BY with 2ndary indexes is not supported.",
        ));
    }
    let limit = limit_value(&s.limit, "[limit]", binds)?.unwrap_or(usize::MAX);
    let per_partition_limit =
        limit_value(&s.per_partition_limit, "[per_partition_limit]", binds)?.unwrap_or(usize::MAX);
    let reversed = order_by(&table, s, &where_)?;
    let page_size = match params.page_size {
        Some(n) if n > 0 => n as usize,
        _ => usize::MAX,
    };
    let multi_key_sort =
        !s.order_by.is_empty() && matches!(&where_.partitions, Partitions::Keys(k) if k.len() > 1);
    if multi_key_sort && page_size != usize::MAX && !sel.aggregate {
        return Err(CqlError::invalid(
            "Cannot page queries with both ORDER BY and a IN restriction on the partition key; you must either remove the ORDER BY or the IN and sort client side, or disable paging for this query",
        ));
    }
    let state = match &params.paging_state {
        Some(b) => Some(PagingState::decode(b)?),
        None => None,
    };

    // Virtual tables, aggregates and cross-partition ORDER BY are computed whole, then
    // paged by offset.
    if virtual_table {
        let all = system_views::rows(ex, schema, &table)?;
        let mut matched = Vec::new();
        for r in all {
            if row_matches(&table, &where_, &r)? {
                matched.push(r);
            }
        }
        if reversed {
            matched.reverse();
        }
        return finish_materialized(&sel, matched, limit, page_size, state, group_len);
    }

    let mut reader = Reader::new(
        ex,
        schema,
        params.consistency,
        &table,
        &where_,
        reversed,
        per_partition_limit,
        s.distinct,
        !s.order_by.is_empty()
            || where_.clustering_eq.is_empty()
                && where_.clustering_slice.is_none()
                && where_.multi_slice.is_none(),
    )?;
    reader.index = index_plan;
    if sel.aggregate || multi_key_sort || group_len.is_some() {
        let mut rows = Vec::new();
        let mut warnings = Vec::new();
        reader
            .run(
                None,
                &mut |r| {
                    rows.push(r);
                    rows.len() < limit || sel.aggregate || group_len.is_some()
                },
                &mut warnings,
            )
            .await?;
        if multi_key_sort {
            sort_by_clustering(&table, &mut rows, reversed);
        }
        let mut out = finish_materialized(&sel, rows, limit, page_size, state, group_len)?;
        out.warnings = warnings;
        return Ok(out);
    }

    let (already, resume) = match state {
        Some(PagingState {
            position,
            rows_returned,
            ..
        }) => (rows_returned as usize, Some(position)),
        None => (0, None),
    };
    if already >= limit {
        return Ok(Outcome::new(ResultBody::Rows(Rows {
            metadata: metadata(&sel, None),
            rows: Vec::new(),
        })));
    }
    let want = page_size.min(limit - already);
    let mut out_rows: Vec<Vec<Option<Bytes>>> = Vec::new();
    let mut warnings = Vec::new();
    let mut last_pos: Option<Position> = None;
    let exhausted = reader
        .run(
            resume,
            &mut |r| {
                out_rows.push(project(&sel, &r).unwrap_or_default());
                out_rows.len() < want
            },
            &mut warnings,
        )
        .await?;
    if let Some(p) = reader.position() {
        last_pos = Some(p);
    }
    let total = already + out_rows.len();
    let paging_state = if !exhausted && out_rows.len() == want && total < limit {
        last_pos.map(|position| {
            PagingState {
                position,
                rows_returned: total as u64,
            }
            .encode()
        })
    } else {
        None
    };
    Ok(Outcome {
        body: ResultBody::Rows(Rows {
            metadata: metadata(&sel, paging_state),
            rows: out_rows,
        }),
        warnings,
    })
}

fn metadata(sel: &Selection, paging_state: Option<Bytes>) -> RowsMetadata {
    RowsMetadata {
        columns: sel.specs.clone(),
        paging_state,
        no_metadata: false,
        new_metadata_id: None,
    }
}

fn finish_materialized(
    sel: &Selection,
    rows: Vec<RawRow>,
    limit: usize,
    page_size: usize,
    state: Option<PagingState>,
    group_len: Option<usize>,
) -> CqlResult<Outcome> {
    let projected: Vec<Vec<Option<Bytes>>> = if let Some(n) = group_len {
        // Rows arrive in primary-key order, so each group is a run of equal prefixes.
        let mut out = Vec::new();
        let mut start = 0;
        while start < rows.len() && out.len() < limit {
            let mut end = start + 1;
            while end < rows.len() && rows[end].values[..n] == rows[start].values[..n] {
                end += 1;
            }
            let group = &rows[start..end];
            out.push(if sel.aggregate {
                aggregate(sel, group)?
            } else {
                project(sel, &group[0])?
            });
            start = end;
        }
        out
    } else if sel.aggregate {
        vec![aggregate(sel, &rows)?]
    } else {
        rows.iter()
            .take(limit)
            .map(|r| project(sel, r))
            .collect::<CqlResult<_>>()?
    };
    let offset = match state {
        Some(PagingState {
            position: Position::Offset(o),
            ..
        }) => o as usize,
        Some(_) => return Err(CqlError::invalid("Invalid value for the paging state")),
        None => 0,
    };
    let end = offset.saturating_add(page_size).min(projected.len());
    let page: Vec<_> = projected
        .get(offset.min(projected.len())..end)
        .map(<[_]>::to_vec)
        .unwrap_or_default();
    let paging_state = (end < projected.len()).then(|| {
        PagingState {
            position: Position::Offset(end as u64),
            rows_returned: end as u64,
        }
        .encode()
    });
    Ok(Outcome::new(ResultBody::Rows(Rows {
        metadata: metadata(sel, paging_state),
        rows: page,
    })))
}

/// Whether ORDER BY asks for the reverse of the table's clustering order.
fn order_by(table: &TableDef, s: &SelectStatement, where_: &Where) -> CqlResult<bool> {
    if s.order_by.is_empty() {
        return Ok(false);
    }
    if !matches!(where_.partitions, Partitions::Keys(_)) {
        return Err(CqlError::invalid(
            "ORDER BY is only supported when the partition key is restricted by an EQ or an IN.",
        ));
    }
    let mut reversed: Option<bool> = None;
    for (i, (name, order)) in s.order_by.iter().enumerate() {
        let col = table.column_or_err(name)?;
        if col.kind != ColumnKind::Clustering {
            return Err(CqlError::invalid(format!(
                "Order by is currently only supported on the clustered columns of the PRIMARY KEY, got {name}"
            )));
        }
        if col.position as usize != i {
            return Err(CqlError::invalid(
                "Order by currently only supports the ordering of columns following their declared order in the PRIMARY KEY",
            ));
        }
        let rev = *order != col.order;
        match reversed {
            None => reversed = Some(rev),
            Some(r) if r != rev => return Err(CqlError::invalid("Unsupported order by relation")),
            _ => {}
        }
    }
    Ok(reversed.unwrap_or(false))
}

fn sort_by_clustering(table: &TableDef, rows: &mut [RawRow], reversed: bool) {
    let pk = table.partition_key_len;
    rows.sort_by(|a, b| {
        let mut o = Ordering::Equal;
        for (i, c) in table.clustering().iter().enumerate() {
            let (x, y) = (
                a.values[pk + i].as_deref().unwrap_or(&[]),
                b.values[pk + i].as_deref().unwrap_or(&[]),
            );
            let mut ord = compare::compare(&c.ty, x, y);
            if c.order == Order::Desc {
                ord = ord.reverse();
            }
            o = ord;
            if o != Ordering::Equal {
                break;
            }
        }
        if reversed { o.reverse() } else { o }
    });
}

/// Checks every restriction against a whole row (virtual tables, which push nothing down).
fn row_matches(table: &TableDef, where_: &Where, row: &RawRow) -> CqlResult<bool> {
    let eq = |i: usize, candidates: &[Bytes]| {
        let ty = &table.columns[i].ty;
        let v = row.values[i].as_deref().unwrap_or(&[]);
        candidates
            .iter()
            .any(|c| compare::compare(ty, v, c) == Ordering::Equal)
    };
    match &where_.partitions {
        Partitions::Keys(keys) => {
            let ok = keys.iter().any(|k| {
                k.iter()
                    .enumerate()
                    .all(|(i, v)| eq(i, std::slice::from_ref(v)))
            });
            if !ok {
                return Ok(false);
            }
        }
        Partitions::Scan { .. } => {}
    }
    let pk = table.partition_key_len;
    for (i, cands) in where_.clustering_eq.iter().enumerate() {
        if !eq(pk + i, cands) {
            return Ok(false);
        }
    }
    if let Some((lo, hi)) = &where_.clustering_slice {
        let i = pk + where_.clustering_eq.len();
        let ty = &table.columns[i].ty;
        let v = row.values[i].as_deref().unwrap_or(&[]);
        if let Some((b, inc)) = lo {
            let o = compare::compare(ty, v, b);
            if o == Ordering::Less || (o == Ordering::Equal && !inc) {
                return Ok(false);
            }
        }
        if let Some((b, inc)) = hi {
            let o = compare::compare(ty, v, b);
            if o == Ordering::Greater || (o == Ordering::Equal && !inc) {
                return Ok(false);
            }
        }
    }
    for f in &where_.filters {
        if !restrictions::filter_matches(table, f, row.values[f.column].as_deref())? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Applies the selection to one row.
fn project(sel: &Selection, row: &RawRow) -> CqlResult<Vec<Option<Bytes>>> {
    let values = sel
        .exprs
        .iter()
        .map(|e| eval(e, row))
        .collect::<CqlResult<_>>()?;
    Ok(to_json_row(sel, values))
}

/// SELECT JSON: one object per row, keyed by the column names as Cassandra prints them.
fn to_json_row(sel: &Selection, values: Vec<Option<Bytes>>) -> Vec<Option<Bytes>> {
    let Some(specs) = &sel.json else {
        return values;
    };
    let fields: Vec<String> = specs
        .iter()
        .zip(&values)
        .map(|(spec, v)| {
            let value = match v {
                Some(b) => json::to_json(&spec.ty, b),
                None => "null".into(),
            };
            format!("{}: {value}", json::quote(&json::json_name(&spec.name)))
        })
        .collect();
    vec![Some(Bytes::from(format!("{{{}}}", fields.join(", "))))]
}

/// How many primary-key columns GROUP BY groups on; Cassandra accepts only a prefix of the
/// primary key in declaration order.
fn group_by_len(table: &TableDef, group_by: &[String]) -> CqlResult<Option<usize>> {
    if group_by.is_empty() {
        return Ok(None);
    }
    let pk_len = table.partition_key_len + table.clustering_len;
    for (i, name) in group_by.iter().enumerate() {
        let idx = table.column_index_or_err(name)?;
        if idx >= pk_len {
            return Err(CqlError::invalid(format!(
                "Group by is currently only supported on the columns of the PRIMARY KEY, got {name}"
            )));
        }
        if idx != i {
            return Err(CqlError::invalid(
                "Group by currently only support groups of columns following their declared order in the PRIMARY KEY",
            ));
        }
    }
    Ok(Some(group_by.len()))
}

fn eval(e: &Expr, row: &RawRow) -> CqlResult<Option<Bytes>> {
    Ok(match e {
        Expr::Column(i) => row.values[*i].clone(),
        Expr::WriteTime(i) => row.writetimes[*i].map(|t| Bytes::copy_from_slice(&t.to_be_bytes())),
        Expr::Ttl(i) => row.ttls[*i].map(|t| Bytes::copy_from_slice(&t.to_be_bytes())),
        Expr::Token(idxs) => {
            let parts: Vec<&[u8]> = idxs
                .iter()
                .map(|i| row.values[*i].as_deref().unwrap_or(&[]))
                .collect();
            let key = shoal_gossip::partitioner::compose_key(&parts);
            Some(Bytes::copy_from_slice(
                &shoal_gossip::partitioner::token(&key).to_be_bytes(),
            ))
        }
        Expr::Function { f, args } => {
            let vals: Vec<Option<Bytes>> = args
                .iter()
                .map(|a| eval(a, row))
                .collect::<CqlResult<_>>()?;
            (f.exec)(&vals)?
        }
        Expr::Cast { arg, from, to } => match eval(arg, row)? {
            Some(b) => Some(cast(from, to, &b)?),
            None => None,
        },
        Expr::Field { arg, index } => match eval(arg, row)? {
            Some(b) => udt_field(&b, *index),
            None => None,
        },
        Expr::ToJson { arg, ty } => Some(Bytes::from(match eval(arg, row)? {
            Some(b) => json::to_json(ty, &b),
            None => "null".to_string(),
        })),
        Expr::Const(v) => v.clone(),
        Expr::CountStar | Expr::Aggregate { .. } => None,
    })
}

fn udt_field(bytes: &[u8], index: usize) -> Option<Bytes> {
    let mut rest = bytes;
    for i in 0..=index {
        if rest.len() < 4 {
            return None;
        }
        let len = i32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
        rest = &rest[4..];
        if len < 0 {
            if i == index {
                return None;
            }
            continue;
        }
        let len = len as usize;
        if rest.len() < len {
            return None;
        }
        if i == index {
            return Some(Bytes::copy_from_slice(&rest[..len]));
        }
        rest = &rest[len..];
    }
    None
}

fn cast(from: &CqlType, to: &CqlType, b: &[u8]) -> CqlResult<Bytes> {
    use crate::types::Value as V;
    if from == to {
        return Ok(Bytes::copy_from_slice(b));
    }
    let v = codec::decode(from, b)?;
    if matches!(to, CqlType::Text | CqlType::Ascii) {
        let text = match &v {
            V::Text(s) | V::Ascii(s) => s.clone(),
            _ => {
                let lit = crate::types::literal::to_cql_literal(from, b);
                lit.trim_matches('\'').to_string()
            }
        };
        return Ok(codec::encode(&if *to == CqlType::Ascii {
            V::Ascii(text)
        } else {
            V::Text(text)
        }));
    }
    use crate::types::temporal::{DATE_EPOCH, MILLIS_PER_DAY};
    use num_bigint::BigInt;
    let refuse = || {
        CqlError::invalid(format!(
            "{} cannot be cast to {}",
            from.cql_name(),
            to.cql_name()
        ))
    };
    // Temporal casts of Cassandra's CastFcts: timestamp <-> date, timeuuid -> both.
    let millis = match &v {
        V::Timestamp(ms) => Some(*ms),
        V::Date(d) => Some((*d as i64 - DATE_EPOCH) * MILLIS_PER_DAY),
        V::Timeuuid(_) => crate::types::functions::timeuuid_millis(b),
        _ => None,
    };
    match (to, millis) {
        (CqlType::Timestamp, Some(ms)) if !matches!(v, V::Timestamp(_)) => {
            return Ok(codec::encode(&V::Timestamp(ms)));
        }
        (CqlType::Date, Some(ms)) if !matches!(v, V::Date(_)) => {
            return Ok(codec::encode(&V::Date(
                (ms.div_euclid(MILLIS_PER_DAY) + DATE_EPOCH) as u32,
            )));
        }
        (CqlType::Timestamp | CqlType::Date, _) => return Err(refuse()),
        _ => {}
    }
    // Numbers convert as Java's Number.xxxValue(): integers wrap, floating point
    // truncates towards zero and saturates.
    enum N {
        I(BigInt),
        F(f64),
        D(BigInt, i32),
    }
    let n = match &v {
        V::Tinyint(x) => N::I(BigInt::from(*x)),
        V::Smallint(x) => N::I(BigInt::from(*x)),
        V::Int(x) => N::I(BigInt::from(*x)),
        V::Bigint(x) | V::Counter(x) => N::I(BigInt::from(*x)),
        V::Varint(x) => N::I(x.clone()),
        V::Float(x) => N::F(*x as f64),
        V::Double(x) => N::F(*x),
        V::Decimal { unscaled, scale } => N::D(unscaled.clone(), *scale),
        _ => return Err(refuse()),
    };
    let integer = |n: &N| -> BigInt {
        match n {
            N::I(i) => i.clone(),
            N::F(f) => BigInt::from(*f as i64),
            N::D(u, sc) => {
                if *sc <= 0 {
                    u * BigInt::from(10).pow((-sc) as u32)
                } else {
                    u / BigInt::from(10).pow(*sc as u32)
                }
            }
        }
    };
    let wrap = |i: BigInt| -> i64 {
        let bytes = i.to_signed_bytes_le();
        let mut buf = [if i.sign() == num_bigint::Sign::Minus {
            0xff
        } else {
            0
        }; 8];
        for (d, s) in buf.iter_mut().zip(bytes.iter()) {
            *d = *s;
        }
        i64::from_le_bytes(buf)
    };
    let float = |n: &N| -> f64 {
        match n {
            N::I(i) => i.to_string().parse().unwrap_or(0.0),
            N::F(f) => *f,
            N::D(u, sc) => format!("{u}e{}", -sc).parse().unwrap_or(0.0),
        }
    };
    let out = match to {
        CqlType::Tinyint
        | CqlType::Smallint
        | CqlType::Int
        | CqlType::Bigint
        | CqlType::Counter => {
            let x = match &n {
                // Java narrows a double through int (or long for bigint).
                N::F(f) if *to == CqlType::Bigint || *to == CqlType::Counter => *f as i64,
                N::F(f) => (*f as i32) as i64,
                other => wrap(integer(other)),
            };
            match to {
                CqlType::Tinyint => V::Tinyint(x as i8),
                CqlType::Smallint => V::Smallint(x as i16),
                CqlType::Int => V::Int(x as i32),
                CqlType::Counter => V::Counter(x),
                _ => V::Bigint(x),
            }
        }
        CqlType::Float => V::Float(float(&n) as f32),
        CqlType::Double => V::Double(float(&n)),
        CqlType::Varint => V::Varint(match &n {
            N::F(f) if !f.is_finite() => return Err(refuse()),
            N::F(f) => {
                let (u, sc) =
                    crate::types::literal::parse_decimal(&format!("{f:?}")).ok_or_else(refuse)?;
                integer(&N::D(u, sc))
            }
            other => integer(other),
        }),
        CqlType::Decimal => match &n {
            N::I(i) => V::Decimal {
                unscaled: i.clone(),
                scale: 0,
            },
            N::D(u, sc) => V::Decimal {
                unscaled: u.clone(),
                scale: *sc,
            },
            N::F(f) => {
                if !f.is_finite() {
                    return Err(refuse());
                }
                // BigDecimal.valueOf(double) goes through Double.toString.
                let text = if let V::Float(x) = &v {
                    format!("{x:?}")
                } else {
                    format!("{f:?}")
                };
                let (unscaled, scale) =
                    crate::types::literal::parse_decimal(&text).ok_or_else(refuse)?;
                V::Decimal { unscaled, scale }
            }
        },
        _ => return Err(refuse()),
    };
    Ok(codec::encode(&out))
}

fn aggregate(sel: &Selection, rows: &[RawRow]) -> CqlResult<Vec<Option<Bytes>>> {
    let values = sel
        .exprs
        .iter()
        .map(|e| aggregate_expr(e, rows))
        .collect::<CqlResult<_>>()?;
    Ok(to_json_row(sel, values))
}

fn aggregate_expr(e: &Expr, rows: &[RawRow]) -> CqlResult<Option<Bytes>> {
    use crate::types::Value as V;
    match e {
        Expr::CountStar => Ok(Some(Bytes::copy_from_slice(
            &(rows.len() as i64).to_be_bytes(),
        ))),
        Expr::Aggregate { kind, arg, ty } => {
            let vals: Vec<Bytes> = rows
                .iter()
                .filter_map(|r| eval(arg, r).ok().flatten())
                .collect();
            match kind {
                AggKind::Count => Ok(Some(Bytes::copy_from_slice(
                    &(vals.len() as i64).to_be_bytes(),
                ))),
                AggKind::Min => Ok(vals.into_iter().min_by(|a, b| compare::compare(ty, a, b))),
                AggKind::Max => Ok(vals.into_iter().max_by(|a, b| compare::compare(ty, a, b))),
                AggKind::Sum | AggKind::Avg => {
                    let decoded: Vec<V> = vals
                        .iter()
                        .map(|b| codec::decode(ty, b))
                        .collect::<CqlResult<_>>()?;
                    let n = decoded.len() as i64;
                    let out = numeric_fold(ty, &decoded, *kind == AggKind::Avg, n)?;
                    Ok(Some(codec::encode(&out)))
                }
            }
        }
        Expr::ToJson { arg, ty } if arg.is_aggregate() => {
            Ok(Some(Bytes::from(match aggregate_expr(arg, rows)? {
                Some(b) => json::to_json(ty, &b),
                None => "null".to_string(),
            })))
        }
        other => Ok(rows.first().map(|r| eval(other, r)).transpose()?.flatten()),
    }
}

fn numeric_fold(
    ty: &CqlType,
    vals: &[crate::types::Value],
    avg: bool,
    n: i64,
) -> CqlResult<crate::types::Value> {
    use crate::types::Value as V;
    use num_bigint::BigInt;
    let div = |s: i128| if avg && n > 0 { s / n as i128 } else { s };
    Ok(match ty {
        CqlType::Tinyint
        | CqlType::Smallint
        | CqlType::Int
        | CqlType::Bigint
        | CqlType::Counter => {
            let s: i128 = vals
                .iter()
                .map(|v| match v {
                    V::Tinyint(x) => *x as i128,
                    V::Smallint(x) => *x as i128,
                    V::Int(x) => *x as i128,
                    V::Bigint(x) | V::Counter(x) => *x as i128,
                    _ => 0,
                })
                .sum();
            let s = div(s);
            match ty {
                CqlType::Tinyint => V::Tinyint(s as i8),
                CqlType::Smallint => V::Smallint(s as i16),
                CqlType::Int => V::Int(s as i32),
                CqlType::Counter => V::Counter(s as i64),
                _ => V::Bigint(s as i64),
            }
        }
        CqlType::Float | CqlType::Double => {
            let s: f64 = vals
                .iter()
                .map(|v| match v {
                    V::Float(x) => *x as f64,
                    V::Double(x) => *x,
                    _ => 0.0,
                })
                .sum();
            let s = if avg && n > 0 { s / n as f64 } else { s };
            if *ty == CqlType::Float {
                V::Float(s as f32)
            } else {
                V::Double(s)
            }
        }
        CqlType::Varint => {
            let s: BigInt = vals
                .iter()
                .map(|v| match v {
                    V::Varint(x) => x.clone(),
                    _ => BigInt::from(0),
                })
                .sum();
            V::Varint(if avg && n > 0 { s / n } else { s })
        }
        CqlType::Decimal => {
            // Align scales, sum the unscaled values.
            let scale = vals
                .iter()
                .map(|v| match v {
                    V::Decimal { scale, .. } => *scale,
                    _ => 0,
                })
                .max()
                .unwrap_or(0);
            let s: BigInt = vals
                .iter()
                .map(|v| match v {
                    V::Decimal {
                        unscaled,
                        scale: sc,
                    } => unscaled * BigInt::from(10).pow((scale - sc) as u32),
                    _ => BigInt::from(0),
                })
                .sum();
            V::Decimal {
                unscaled: if avg && n > 0 { s / n } else { s },
                scale,
            }
        }
        _ => {
            return Err(CqlError::invalid(format!(
                "Cannot sum values of type {}",
                ty.cql_name()
            )));
        }
    })
}

/// Reads rows from the engine in bounded chunks, following the WHERE clause, and hands
/// each matching row to a visitor; remembers where it stopped for the paging state.
struct Reader<'a> {
    ex: &'a Executor,
    schema: &'a Arc<Schema>,
    consistency: Consistency,
    table: &'a TableDef,
    where_: &'a Where,
    slices: Vec<shoal_engine::ClusteringRange>,
    reversed: bool,
    per_partition_limit: usize,
    distinct: bool,
    /// Whether a partition with only a static row yields a row (no clustering restriction).
    static_only_rows: bool,
    keys: Vec<(i64, Bytes)>,
    last: Option<Position>,
    clustering_types: Vec<(CqlType, bool)>,
    /// Read through this secondary index instead of scanning.
    index: Option<index::Plan>,
}

/// Rows per engine call: bounds memory per request however large a partition is.
const CHUNK: usize = 1000;

impl<'a> Reader<'a> {
    #[allow(clippy::too_many_arguments)]
    fn new(
        ex: &'a Executor,
        schema: &'a Arc<Schema>,
        consistency: Consistency,
        table: &'a TableDef,
        where_: &'a Where,
        reversed: bool,
        per_partition_limit: usize,
        distinct: bool,
        static_only_rows: bool,
    ) -> CqlResult<Self> {
        let slices = where_.clustering_ranges(table)?;
        let keys = match &where_.partitions {
            Partitions::Keys(keys) => keys
                .iter()
                .map(|k| {
                    let refs: Vec<&[u8]> = k.iter().map(|b| b.as_ref()).collect();
                    let key = Bytes::from(shoal_gossip::partitioner::compose_key(&refs));
                    (shoal_gossip::partitioner::token(&key), key)
                })
                .collect(),
            Partitions::Scan { .. } => Vec::new(),
        };
        Ok(Reader {
            ex,
            schema,
            consistency,
            table,
            where_,
            slices,
            reversed,
            per_partition_limit: if distinct { 1 } else { per_partition_limit },
            distinct,
            static_only_rows: static_only_rows || distinct,
            keys,
            last: None,
            clustering_types: table.clustering_types(),
            index: None,
        })
    }

    fn position(&self) -> Option<Position> {
        self.last.clone()
    }

    fn command(
        &self,
        partitions: PartitionRange,
        start_after_row: Option<Bytes>,
        row_limit: usize,
    ) -> ReadCommand {
        ReadCommand {
            table: self.table.engine_id(),
            partitions,
            slices: self.slices.clone(),
            reversed: self.reversed,
            start_after_row,
            row_limit,
            per_partition_limit: self.per_partition_limit,
            partition_limit: usize::MAX,
            include_tombstones: false,
            now: now_seconds(),
        }
    }

    /// Visits rows from `resume` on until the visitor returns false. Returns true when the
    /// data is exhausted.
    async fn run(
        &mut self,
        resume: Option<Position>,
        visit: &mut (dyn FnMut(RawRow) -> bool + Send),
        warnings: &mut Vec<String>,
    ) -> CqlResult<bool> {
        if let Some(plan) = self.index.clone() {
            return self.run_index(&plan, resume, visit, warnings);
        }
        match &self.where_.partitions {
            Partitions::Keys(_) => self.run_keys(resume, visit, warnings).await,
            Partitions::Scan { start, end } => {
                let (start, end) = (*start, *end);
                self.run_scan(start, end, resume, visit, warnings).await
            }
        }
    }

    /// Walks the index partition of the restricted value in order, reading each hit's base
    /// row and re-checking every restriction on it (stale entries fail the check).
    fn run_index(
        &mut self,
        plan: &index::Plan,
        resume: Option<Position>,
        visit: &mut dyn FnMut(RawRow) -> bool,
        warnings: &mut Vec<String>,
    ) -> CqlResult<bool> {
        let mut after = match resume {
            Some(Position::Partition {
                key, clustering, ..
            }) if key == plan.key => clustering,
            Some(_) => return Err(CqlError::invalid("Invalid value for the paging state")),
            None => None,
        };
        loop {
            let cmd = ReadCommand {
                table: plan.index_table,
                partitions: PartitionRange::Single {
                    token: plan.token,
                    key: plan.key.clone(),
                },
                slices: Vec::new(),
                reversed: false,
                start_after_row: after.clone(),
                row_limit: CHUNK,
                per_partition_limit: CHUNK,
                partition_limit: usize::MAX,
                include_tombstones: false,
                now: now_seconds(),
            };
            let r = self.ex.engine.read(&cmd).map_err(engine_error)?;
            warnings.extend(r.warnings);
            let entries: Vec<Bytes> = r
                .partitions
                .into_iter()
                .flat_map(|p| p.rows.into_iter().map(|row| row.clustering))
                .collect();
            let n = entries.len();
            for c in entries {
                let hit = index::decode_hit(&c)?;
                after = Some(c);
                let slices = match &hit.clustering {
                    Some(ck) => vec![shoal_engine::ClusteringRange {
                        start: shoal_engine::ClusteringBound {
                            prefix: ck.clone(),
                            inclusive: true,
                        },
                        end: shoal_engine::ClusteringBound {
                            prefix: ck.clone(),
                            inclusive: true,
                        },
                    }],
                    None => self.slices.clone(),
                };
                let base = ReadCommand {
                    slices,
                    ..self.command(
                        PartitionRange::Single {
                            token: hit.token,
                            key: hit.key.clone(),
                        },
                        None,
                        usize::MAX,
                    )
                };
                let res = self.ex.engine.read(&base).map_err(engine_error)?;
                warnings.extend(res.warnings);
                let mut stopped = false;
                for p in res.partitions {
                    if hit.clustering.is_some() && p.rows.is_empty() {
                        continue;
                    }
                    let (table, where_) = (self.table, self.where_);
                    let mut check = |row: RawRow| -> bool {
                        match row_matches(table, where_, &row) {
                            Ok(true) => visit(row),
                            _ => true,
                        }
                    };
                    let (_, _, st) = self.emit_partition(&p, false, 0, &mut check)?;
                    if st {
                        stopped = true;
                        break;
                    }
                }
                self.last = Some(Position::Partition {
                    token: plan.token,
                    key: plan.key.clone(),
                    clustering: after.clone(),
                    partition_rows: 0,
                });
                if stopped {
                    return Ok(false);
                }
            }
            if n < CHUNK {
                return Ok(true);
            }
        }
    }

    async fn run_keys(
        &mut self,
        resume: Option<Position>,
        visit: &mut (dyn FnMut(RawRow) -> bool + Send),
        warnings: &mut Vec<String>,
    ) -> CqlResult<bool> {
        let keys = self.keys.clone();
        let mut start_idx = 0;
        let mut after_row: Option<Bytes> = None;
        let mut pp_done = 0usize;
        if let Some(Position::Partition {
            key,
            clustering,
            partition_rows,
            ..
        }) = &resume
        {
            match keys.iter().position(|(_, k)| k == key) {
                Some(i) => {
                    start_idx = i;
                    match clustering {
                        Some(c) => {
                            after_row = Some(c.clone());
                            pp_done = *partition_rows as usize;
                        }
                        None => start_idx = i + 1,
                    }
                }
                None => return Err(CqlError::invalid("Invalid value for the paging state")),
            }
        }
        for (token, key) in keys.iter().skip(start_idx) {
            let mut continue_after = after_row.take();
            let mut done_in_partition = pp_done;
            pp_done = 0;
            loop {
                if done_in_partition >= self.per_partition_limit {
                    break;
                }
                let limit = CHUNK.min(self.per_partition_limit - done_in_partition);
                let cmd = self.command(
                    PartitionRange::Single {
                        token: *token,
                        key: key.clone(),
                    },
                    continue_after.clone(),
                    limit,
                );
                let mut cmd = cmd;
                cmd.per_partition_limit = limit;
                let result = self
                    .ex
                    .read(self.schema, cmd.clone(), self.consistency)
                    .await?;
                warnings.extend(result.warnings);
                let mut got = 0;
                let mut stop = false;
                for p in result.partitions {
                    let (n, last_ck, stopped) = self.emit_partition(
                        &p,
                        continue_after.is_some(),
                        done_in_partition,
                        visit,
                    )?;
                    got += n;
                    done_in_partition += n;
                    if let Some(c) = last_ck {
                        continue_after = Some(c);
                    }
                    if stopped {
                        stop = true;
                        break;
                    }
                }
                if stop {
                    return Ok(false);
                }
                if got < limit || self.distinct {
                    break;
                }
            }
        }
        Ok(true)
    }

    async fn run_scan(
        &mut self,
        token_start: Option<(i64, bool)>,
        token_end: Option<(i64, bool)>,
        resume: Option<Position>,
        visit: &mut (dyn FnMut(RawRow) -> bool + Send),
        warnings: &mut Vec<String>,
    ) -> CqlResult<bool> {
        let mut start = token_start.map(|(t, inc)| PartitionPosition {
            token: t,
            key: None,
            inclusive: inc,
        });
        let end = token_end.map(|(t, inc)| PartitionPosition {
            token: t,
            key: None,
            inclusive: inc,
        });
        // Finish a partition interrupted by the previous page first.
        if let Some(Position::Partition {
            token,
            key,
            clustering,
            partition_rows,
        }) = resume
        {
            if let Some(c) = clustering {
                let cmd = ReadCommand {
                    per_partition_limit: self
                        .per_partition_limit
                        .saturating_sub(partition_rows as usize),
                    ..self.command(
                        PartitionRange::Single {
                            token,
                            key: key.clone(),
                        },
                        Some(c.clone()),
                        usize::MAX,
                    )
                };
                // Bounded: a single partition is paged through in chunks below.
                let mut after = Some(c);
                let mut done = partition_rows as usize;
                loop {
                    if done >= self.per_partition_limit {
                        break;
                    }
                    let limit = CHUNK.min(self.per_partition_limit - done);
                    let mut c2 = cmd.clone();
                    c2.start_after_row = after.clone();
                    c2.row_limit = limit;
                    c2.per_partition_limit = limit;
                    let r = self
                        .ex
                        .read(self.schema, c2.clone(), self.consistency)
                        .await?;
                    warnings.extend(r.warnings);
                    let mut got = 0;
                    for p in r.partitions {
                        let (n, last_ck, stopped) = self.emit_partition(&p, true, done, visit)?;
                        got += n;
                        done += n;
                        if last_ck.is_some() {
                            after = last_ck;
                        }
                        if stopped {
                            return Ok(false);
                        }
                    }
                    if got < limit {
                        break;
                    }
                }
            }
            start = Some(PartitionPosition {
                token,
                key: Some(key),
                inclusive: false,
            });
        }
        loop {
            let cmd = self.command(
                PartitionRange::Range {
                    start: start.clone(),
                    end: end.clone(),
                },
                None,
                CHUNK,
            );
            let result = self
                .ex
                .read(self.schema, cmd.clone(), self.consistency)
                .await?;
            warnings.extend(result.warnings);
            if result.partitions.is_empty() {
                return Ok(true);
            }
            let mut rows_in_chunk = 0;
            let n_parts = result.partitions.len();
            for (pi, p) in result.partitions.iter().enumerate() {
                let (n, last_ck, stopped) = self.emit_partition(p, false, 0, visit)?;
                rows_in_chunk += p.rows.len().max(usize::from(p.static_row.is_some()));
                if stopped {
                    return Ok(false);
                }
                let is_last = pi + 1 == n_parts;
                if is_last && rows_in_chunk >= CHUNK && !self.distinct {
                    // The chunk may have cut this partition short: continue inside it.
                    if let Some(ck) =
                        last_ck.or_else(|| p.rows.last().map(|r| r.clustering.clone()))
                    {
                        let mut done = n;
                        let mut after = Some(ck);
                        loop {
                            if done >= self.per_partition_limit {
                                break;
                            }
                            let limit = CHUNK.min(self.per_partition_limit - done);
                            let mut c2 = self.command(
                                PartitionRange::Single {
                                    token: p.token,
                                    key: p.key.clone(),
                                },
                                after.clone(),
                                limit,
                            );
                            c2.per_partition_limit = limit;
                            let r = self
                                .ex
                                .read(self.schema, c2.clone(), self.consistency)
                                .await?;
                            warnings.extend(r.warnings);
                            let mut got = 0;
                            for q in r.partitions {
                                let (m, l, st) = self.emit_partition(&q, true, done, visit)?;
                                got += q.rows.len();
                                done += m;
                                if l.is_some() {
                                    after = l;
                                }
                                if st {
                                    return Ok(false);
                                }
                            }
                            if got < limit {
                                break;
                            }
                        }
                    }
                }
                start = Some(PartitionPosition {
                    token: p.token,
                    key: Some(p.key.clone()),
                    inclusive: false,
                });
            }
            if rows_in_chunk < CHUNK && n_parts < CHUNK {
                return Ok(true);
            }
        }
    }

    /// Emits the rows of one partition. Returns (rows emitted, last clustering key emitted,
    /// whether the visitor asked to stop).
    fn emit_partition(
        &mut self,
        p: &PartitionData,
        continuing: bool,
        already_in_partition: usize,
        visit: &mut dyn FnMut(RawRow) -> bool,
    ) -> CqlResult<(usize, Option<Bytes>, bool)> {
        let table = self.table;
        let pk_parts = shoal_gossip::partitioner::split_key(&p.key, table.partition_key_len)
            .ok_or_else(|| CqlError::server("corrupt partition key in storage"))?;
        let mut base = RawRow {
            values: vec![None; table.columns.len()],
            writetimes: vec![None; table.columns.len()],
            ttls: vec![None; table.columns.len()],
        };
        for (i, part) in pk_parts.iter().enumerate() {
            base.values[i] = Some(Bytes::copy_from_slice(part));
        }
        if let Some(s) = &p.static_row {
            self.fill_cells(&mut base, s)?;
        }
        let mut emitted = 0;
        let mut last_ck = None;
        if self.distinct
            || (p.rows.is_empty()
                && p.static_row.is_some()
                && self.static_only_rows
                && !continuing
                && already_in_partition == 0)
        {
            if self.distinct && continuing {
                return Ok((0, None, false));
            }
            let keep = self.passes_filters(&base)?;
            self.last = Some(Position::Partition {
                token: p.token,
                key: p.key.clone(),
                clustering: None,
                partition_rows: 1,
            });
            if keep {
                emitted = 1;
                if !visit(base) {
                    return Ok((emitted, None, true));
                }
            }
            return Ok((emitted, None, false));
        }
        for row in &p.rows {
            let mut r = base.clone();
            let cks = bytecomp::decode_components(&self.clustering_types, &row.clustering)?;
            for (i, v) in cks.into_iter().enumerate() {
                r.values[table.partition_key_len + i] = Some(v);
            }
            self.fill_cells(&mut r, row)?;
            last_ck = Some(row.clustering.clone());
            emitted += 1;
            self.last = Some(Position::Partition {
                token: p.token,
                key: p.key.clone(),
                clustering: Some(row.clustering.clone()),
                partition_rows: (already_in_partition + emitted) as u64,
            });
            if self.passes_filters(&r)? && !visit(r) {
                return Ok((emitted, last_ck, true));
            }
        }
        Ok((emitted, last_ck, false))
    }

    fn passes_filters(&self, r: &RawRow) -> CqlResult<bool> {
        if !self.where_.multi_slice_matches(self.table, &r.values) {
            return Ok(false);
        }
        for f in &self.where_.filters {
            if !restrictions::filter_matches(self.table, f, r.values[f.column].as_deref())? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn fill_cells(&self, r: &mut RawRow, row: &Row) -> CqlResult<()> {
        let table = self.table;
        let now = now_seconds();
        let mut i = 0;
        let cells = &row.cells;
        while i < cells.len() {
            let col_id = cells[i].column;
            let mut j = i;
            while j < cells.len() && cells[j].column == col_id {
                j += 1;
            }
            if let Some(ci) = table
                .columns
                .iter()
                .position(|c| c.id == col_id && !c.is_primary_key())
            {
                let col = &table.columns[ci];
                if col.ty.is_multicell() {
                    let group: Vec<&shoal_engine::Cell> = cells[i..j].iter().collect();
                    r.values[ci] = value::assemble(&col.ty, &group)?;
                } else {
                    let c = &cells[i];
                    match &c.value {
                        CellValue::Live { value, ttl } => {
                            r.values[ci] = Some(value.clone());
                            r.writetimes[ci] = Some(c.timestamp);
                            r.ttls[ci] = ttl.map(|t| (t.local_expiration_time - now).max(0));
                        }
                        CellValue::Counter { value } => {
                            r.values[ci] = Some(Bytes::copy_from_slice(&value.to_be_bytes()));
                            r.writetimes[ci] = Some(c.timestamp);
                        }
                        CellValue::Tombstone { .. } => {}
                    }
                }
            }
            i = j;
        }
        Ok(())
    }
}
