//! WHERE clauses: which partitions and clustering ranges a statement touches, what is
//! left to filter row by row, and Cassandra's errors for restrictions it refuses.

use std::cmp::Ordering;

use bytes::Bytes;
use shoal_engine::{ClusteringBound, ClusteringRange};

use crate::error::{CqlError, CqlResult};
use crate::parser::ast::{Operator, Relation, RelationValue, Term};
use crate::schema::{ColumnKind, TableDef};
use crate::types::literal::{BindSource, Evaluated, evaluate};
use crate::types::{CqlType, bytecomp, codec, compare};

/// Which partitions to read.
#[derive(Debug, Clone, PartialEq)]
pub enum Partitions {
    /// Every partition key listed (each entry: serialized key components in pk order).
    Keys(Vec<Vec<Bytes>>),
    /// A scan over a token range; `None` bounds are open. `(token, inclusive)`.
    Scan {
        start: Option<(i64, bool)>,
        end: Option<(i64, bool)>,
    },
}

/// One end of a single-column slice: the serialized value and whether it is inclusive.
pub type SliceBound = Option<(Bytes, bool)>;
/// One end of a multi-column slice: the serialized components and whether it is inclusive.
pub type MultiSliceBound = Option<(Vec<Bytes>, bool)>;

/// A predicate left to check on each row.
#[derive(Debug, Clone)]
pub struct Filter {
    /// Index into `TableDef::columns`.
    pub column: usize,
    pub op: Operator,
    /// One value for comparisons, the candidates for IN.
    pub values: Vec<Bytes>,
    /// For `m[key] = v`.
    pub map_key: Option<Bytes>,
}

/// The analysed WHERE clause of one execution.
#[derive(Debug, Clone)]
pub struct Where {
    pub partitions: Partitions,
    /// Each clustering column restricted by EQ/IN, in order: the serialized candidates.
    pub clustering_eq: Vec<Vec<Bytes>>,
    /// A slice on the clustering column after `clustering_eq`: (start, end) each
    /// `(value, inclusive)`.
    pub clustering_slice: Option<(SliceBound, SliceBound)>,
    /// Multi-column slice `(a, b) > (x, y)` over the first clustering columns, already encoded.
    pub multi_slice: Option<(MultiSliceBound, MultiSliceBound)>,
    /// `(a, b) IN ((1, 2), (3, 4))`: exact tuples for the first clustering columns.
    pub eq_tuples: Option<Vec<Vec<Bytes>>>,
    pub filters: Vec<Filter>,
    /// True when rows must be filtered (ALLOW FILTERING needed for SELECT).
    pub needs_filtering: bool,
    /// The first reason filtering is needed, as Cassandra words it.
    pub filtering_reason: Option<String>,
}

pub const ALLOW_FILTERING_MSG: &str = "Cannot execute this query as it might involve data filtering and thus may have unpredictable performance. If you want to execute this query despite the performance unpredictability, use ALLOW FILTERING";

/// Evaluates a term for a receiver; null and unset are refused where a key is needed.
pub fn key_value(
    ty: &CqlType,
    term: &Term,
    name: &str,
    binds: &dyn BindSource,
) -> CqlResult<Bytes> {
    match evaluate(ty, term, name, binds)? {
        Evaluated::Value(b) => Ok(b),
        Evaluated::Null => Err(CqlError::invalid(format!(
            "Invalid null value in condition for column {name}"
        ))),
        Evaluated::Unset => Err(CqlError::invalid(format!(
            "Invalid unset value for column {name}"
        ))),
    }
}

fn in_values(
    ty: &CqlType,
    value: &RelationValue,
    name: &str,
    binds: &dyn BindSource,
) -> CqlResult<Vec<Bytes>> {
    match value {
        RelationValue::Single(t) => Ok(vec![key_value(ty, t, name, binds)?]),
        RelationValue::InList(ts) => ts.iter().map(|t| key_value(ty, t, name, binds)).collect(),
        RelationValue::InMarker(m) => {
            let list_ty = CqlType::List {
                elem: Box::new(ty.clone()),
                frozen: false,
            };
            match binds.bound(m)? {
                Evaluated::Value(b) => match codec::decode(&list_ty, &b)? {
                    crate::types::Value::List(items) => {
                        Ok(items.iter().map(codec::encode).collect())
                    }
                    _ => Err(CqlError::invalid(format!(
                        "Invalid IN value for column {name}"
                    ))),
                },
                Evaluated::Null => Err(CqlError::invalid(format!(
                    "Invalid null value for IN restriction on {name}"
                ))),
                Evaluated::Unset => Err(CqlError::invalid(format!(
                    "Invalid unset value for column {name}"
                ))),
            }
        }
    }
}

fn dedup_sorted(ty: &CqlType, mut values: Vec<Bytes>) -> Vec<Bytes> {
    values.sort_by(|a, b| compare::compare(ty, a, b));
    values.dedup_by(|a, b| compare::compare(ty, a, b) == Ordering::Equal);
    values
}

fn token_value(term: &Term, binds: &dyn BindSource) -> CqlResult<i64> {
    let b = key_value(&CqlType::Bigint, term, "partition key token", binds)?;
    let arr: [u8; 8] = b
        .as_ref()
        .try_into()
        .map_err(|_| CqlError::invalid("Invalid token value"))?;
    Ok(i64::from_be_bytes(arr))
}

/// Analyses `where_clause` against `table`.
pub fn analyze(
    table: &TableDef,
    where_clause: &[Relation],
    binds: &dyn BindSource,
) -> CqlResult<Where> {
    let pk_len = table.partition_key_len;
    let ck_len = table.clustering_len;
    let mut pk_values: Vec<Option<Vec<Bytes>>> = vec![None; pk_len];
    let mut pk_other = false;
    let mut ck_eq: Vec<Option<Vec<Bytes>>> = vec![None; ck_len];
    let mut ck_start: Vec<Option<(Bytes, bool)>> = vec![None; ck_len];
    let mut ck_end: Vec<Option<(Bytes, bool)>> = vec![None; ck_len];
    let mut multi_slice: Option<(MultiSliceBound, MultiSliceBound)> = None;
    let mut token_start: Option<(i64, bool)> = None;
    let mut token_end: Option<(i64, bool)> = None;
    let mut has_token = false;
    let mut eq_tuples: Option<Vec<Vec<Bytes>>> = None;
    let mut filters = Vec::new();
    let mut reason: Option<String> = None;
    let need = |r: String, reason: &mut Option<String>| {
        if reason.is_none() {
            *reason = Some(r);
        }
    };

    for rel in where_clause {
        match rel {
            Relation::Column { column, op, value } => {
                let idx = table.column_index_or_err(column)?;
                let col = &table.columns[idx];
                match (col.kind, op) {
                    (ColumnKind::PartitionKey, Operator::Eq | Operator::In) => {
                        let pos = col.position as usize;
                        if pk_values[pos].is_some() {
                            return Err(CqlError::invalid(format!(
                                "{column} cannot be restricted by more than one relation if it includes an Equal"
                            )));
                        }
                        pk_values[pos] = Some(dedup_sorted(
                            &col.ty,
                            in_values(&col.ty, value, column, binds)?,
                        ));
                    }
                    (ColumnKind::Clustering, Operator::Eq | Operator::In) => {
                        let pos = col.position as usize;
                        if ck_eq[pos].is_some() || ck_start[pos].is_some() || ck_end[pos].is_some()
                        {
                            return Err(CqlError::invalid(format!(
                                "{column} cannot be restricted by more than one relation if it includes an Equal"
                            )));
                        }
                        ck_eq[pos] = Some(dedup_sorted(
                            &col.ty,
                            in_values(&col.ty, value, column, binds)?,
                        ));
                    }
                    (
                        ColumnKind::Clustering,
                        Operator::Gt | Operator::Ge | Operator::Lt | Operator::Le,
                    ) => {
                        let pos = col.position as usize;
                        if ck_eq[pos].is_some() {
                            return Err(CqlError::invalid(format!(
                                "{column} cannot be restricted by both an equality and an inequality relation"
                            )));
                        }
                        let RelationValue::Single(t) = value else {
                            return Err(CqlError::invalid("Invalid slice restriction"));
                        };
                        let v = key_value(&col.ty, t, column, binds)?;
                        let inclusive = matches!(op, Operator::Ge | Operator::Le);
                        let slot = if matches!(op, Operator::Gt | Operator::Ge) {
                            &mut ck_start[pos]
                        } else {
                            &mut ck_end[pos]
                        };
                        if slot.is_some() {
                            let which = if matches!(op, Operator::Gt | Operator::Ge) {
                                "start"
                            } else {
                                "end"
                            };
                            return Err(CqlError::invalid(format!(
                                "More than one restriction was found for the {which} bound on {column}"
                            )));
                        }
                        *slot = Some((v, inclusive));
                    }
                    (ColumnKind::PartitionKey, _) => {
                        pk_other = true;
                        if !matches!(
                            op,
                            Operator::Gt
                                | Operator::Ge
                                | Operator::Lt
                                | Operator::Le
                                | Operator::Ne
                        ) {
                            return Err(CqlError::invalid(format!(
                                "Unsupported restriction on partition key column {column}"
                            )));
                        }
                        need(ALLOW_FILTERING_MSG.to_string(), &mut reason);
                        filters.push(Filter {
                            column: idx,
                            op: *op,
                            values: in_values(&col.ty, value, column, binds)?,
                            map_key: None,
                        });
                    }
                    (_, Operator::IsNot) => {
                        // `IS NOT NULL` is only meaningful for materialized views.
                        return Err(CqlError::invalid(format!(
                            "Unsupported restriction: {column} IS NOT NULL"
                        )));
                    }
                    (_, Operator::Like) => {
                        return Err(CqlError::invalid(format!(
                            "LIKE restriction is only supported on properly indexed columns. {column} LIKE ... is not valid."
                        )));
                    }
                    _ => {
                        let elem_ty = match (op, &col.ty) {
                            (
                                Operator::Contains,
                                CqlType::List { elem, .. } | CqlType::Set { elem, .. },
                            ) => (**elem).clone(),
                            (Operator::Contains, CqlType::Map { value, .. }) => (**value).clone(),
                            (Operator::ContainsKey, CqlType::Map { key, .. }) => (**key).clone(),
                            (Operator::Contains | Operator::ContainsKey, _) => {
                                return Err(CqlError::invalid(format!(
                                    "Cannot use {} on non-collection column {column}",
                                    if *op == Operator::Contains {
                                        "CONTAINS"
                                    } else {
                                        "CONTAINS KEY"
                                    }
                                )));
                            }
                            _ => col.ty.clone(),
                        };
                        need(ALLOW_FILTERING_MSG.to_string(), &mut reason);
                        filters.push(Filter {
                            column: idx,
                            op: *op,
                            values: in_values(&elem_ty, value, column, binds)?,
                            map_key: None,
                        });
                    }
                }
            }
            Relation::MapEntry {
                column,
                key,
                op,
                value,
            } => {
                let idx = table.column_index_or_err(column)?;
                let CqlType::Map {
                    key: kt, value: vt, ..
                } = &table.columns[idx].ty
                else {
                    return Err(CqlError::invalid(format!("Column {column} is not a map")));
                };
                need(ALLOW_FILTERING_MSG.to_string(), &mut reason);
                filters.push(Filter {
                    column: idx,
                    op: *op,
                    values: vec![key_value(vt, value, column, binds)?],
                    map_key: Some(key_value(kt, key, column, binds)?),
                });
            }
            Relation::Token { columns, op, value } => {
                let expected: Vec<&str> = table
                    .partition_key()
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect();
                if columns.iter().map(String::as_str).collect::<Vec<_>>() != expected {
                    return Err(CqlError::invalid(format!(
                        "The token function arguments must be in the partition key order: {}",
                        expected.join(", ")
                    )));
                }
                has_token = true;
                let t = token_value(value, binds)?;
                match op {
                    Operator::Gt => token_start = Some((t, false)),
                    Operator::Ge => token_start = Some((t, true)),
                    Operator::Lt => token_end = Some((t, false)),
                    Operator::Le => token_end = Some((t, true)),
                    Operator::Eq => {
                        token_start = Some((t, true));
                        token_end = Some((t, true));
                    }
                    _ => {
                        return Err(CqlError::invalid(
                            "Unsupported operator for token() restriction",
                        ));
                    }
                }
            }
            Relation::MultiColumn { columns, op, value } => {
                // Multi-column relations restrict the first clustering columns in order.
                let mut types = Vec::new();
                for (i, c) in columns.iter().enumerate() {
                    let col = table.column_or_err(c)?;
                    if col.kind != ColumnKind::Clustering {
                        return Err(CqlError::invalid(format!(
                            "Multi-column relations can only be applied to clustering columns but was applied to: {c}"
                        )));
                    }
                    if col.position as usize != i {
                        return Err(CqlError::invalid(format!(
                            "Clustering columns must appear in the PRIMARY KEY order in multi-column relations: ({})",
                            columns.join(", ")
                        )));
                    }
                    types.push(col.ty.clone());
                }
                let tuple_ty = CqlType::Tuple(types.clone());
                let tuples: Vec<Vec<Bytes>> = match value {
                    RelationValue::Single(t) => {
                        vec![tuple_components(&tuple_ty, t, columns, binds)?]
                    }
                    RelationValue::InList(ts) => ts
                        .iter()
                        .map(|t| tuple_components(&tuple_ty, t, columns, binds))
                        .collect::<CqlResult<_>>()?,
                    RelationValue::InMarker(_) => in_values(&tuple_ty, value, "in", binds)?
                        .iter()
                        .map(|b| split_tuple(&tuple_ty, b))
                        .collect::<CqlResult<_>>()?,
                };
                match op {
                    Operator::Eq | Operator::In if tuples.len() == 1 => {
                        for (i, v) in tuples[0].iter().enumerate() {
                            ck_eq[i] = Some(vec![v.clone()]);
                        }
                    }
                    Operator::In => {
                        // IN of tuples lists exact prefixes, not a cartesian product.
                        for (i, ty) in types.iter().enumerate() {
                            ck_eq[i] = Some(dedup_sorted(
                                ty,
                                tuples.iter().map(|t| t[i].clone()).collect(),
                            ));
                        }
                        eq_tuples = Some(tuples);
                    }
                    Operator::Gt | Operator::Ge => {
                        let (s, _) = multi_slice.get_or_insert((None, None));
                        *s = Some((tuples[0].clone(), *op == Operator::Ge));
                    }
                    Operator::Lt | Operator::Le => {
                        let (_, e) = multi_slice.get_or_insert((None, None));
                        *e = Some((tuples[0].clone(), *op == Operator::Le));
                    }
                    _ => return Err(CqlError::invalid("Unsupported multi-column relation")),
                }
            }
        }
    }

    // Partition key.
    let all_pk = pk_values.iter().all(Option::is_some);
    let partitions = if all_pk && !pk_other && !has_token {
        let sets: Vec<Vec<Bytes>> = pk_values.into_iter().map(|v| v.expect("checked")).collect();
        Partitions::Keys(cartesian(&sets))
    } else {
        if has_token && pk_values.iter().any(Option::is_some) {
            return Err(CqlError::invalid(
                "Columns \"partition key\" cannot be restricted by both a normal relation and a token relation",
            ));
        }
        if pk_values.iter().any(Option::is_some) {
            need(ALLOW_FILTERING_MSG.to_string(), &mut reason);
            for (pos, vals) in pk_values.into_iter().enumerate() {
                if let Some(vals) = vals {
                    filters.push(Filter {
                        column: pos,
                        op: Operator::In,
                        values: vals,
                        map_key: None,
                    });
                }
            }
        }
        // As Cassandra (CASSANDRA-5573): the minimum token means "unbounded" and a range
        // that would wrap around the ring selects nothing.
        let token_start = token_start.filter(|(t, _)| *t != i64::MIN);
        let token_end = token_end.filter(|(t, _)| *t != i64::MIN);
        match (token_start, token_end) {
            (Some((s, si)), Some((e, ei))) if s > e || (s == e && !(si && ei)) => {
                Partitions::Keys(Vec::new())
            }
            _ => Partitions::Scan {
                start: token_start,
                end: token_end,
            },
        }
    };

    // Clustering: EQ/IN prefix, then at most one slice.
    let mut clustering_eq = Vec::new();
    let mut clustering_slice = None;
    let mut pos = 0;
    while pos < ck_len {
        if let Some(vals) = ck_eq[pos].take() {
            clustering_eq.push(vals);
            pos += 1;
            continue;
        }
        if ck_start[pos].is_some() || ck_end[pos].is_some() {
            clustering_slice = Some((ck_start[pos].take(), ck_end[pos].take()));
            pos += 1;
        }
        break;
    }
    let prefix_end = pos;
    let sliced_at = if clustering_slice.is_some() {
        Some(prefix_end - 1)
    } else {
        None
    };
    for later in prefix_end..ck_len {
        let restricted =
            ck_eq[later].is_some() || ck_start[later].is_some() || ck_end[later].is_some();
        if !restricted {
            continue;
        }
        let col = &table.clustering()[later];
        let prev = &table.clustering()[later - 1];
        let msg = if sliced_at.is_some() && later > sliced_at.unwrap_or(0) {
            format!(
                "Clustering column \"{}\" cannot be restricted (preceding column \"{}\" is restricted by a non-EQ relation)",
                col.name,
                table.clustering()[sliced_at.unwrap_or(0)].name
            )
        } else {
            format!(
                "PRIMARY KEY column \"{}\" cannot be restricted as preceding column \"{}\" is not restricted",
                col.name, prev.name
            )
        };
        need(msg, &mut reason);
        let idx = table.partition_key_len + later;
        if let Some(vals) = ck_eq[later].take() {
            filters.push(Filter {
                column: idx,
                op: Operator::In,
                values: vals,
                map_key: None,
            });
        }
        if let Some((v, inc)) = ck_start[later].take() {
            filters.push(Filter {
                column: idx,
                op: if inc { Operator::Ge } else { Operator::Gt },
                values: vec![v],
                map_key: None,
            });
        }
        if let Some((v, inc)) = ck_end[later].take() {
            filters.push(Filter {
                column: idx,
                op: if inc { Operator::Le } else { Operator::Lt },
                values: vec![v],
                map_key: None,
            });
        }
    }
    if multi_slice.is_some() && (!clustering_eq.is_empty() || clustering_slice.is_some()) {
        return Err(CqlError::invalid(
            "Mixing multi-column slices with single-column restrictions on clustering columns is not supported",
        ));
    }
    if matches!(partitions, Partitions::Scan { .. })
        && (!clustering_eq.is_empty() || clustering_slice.is_some() || multi_slice.is_some())
    {
        need(ALLOW_FILTERING_MSG.to_string(), &mut reason);
    }

    Ok(Where {
        partitions,
        clustering_eq,
        clustering_slice,
        multi_slice,
        eq_tuples,
        needs_filtering: reason.is_some(),
        filtering_reason: reason,
        filters,
    })
}

fn tuple_components(
    ty: &CqlType,
    term: &Term,
    columns: &[String],
    binds: &dyn BindSource,
) -> CqlResult<Vec<Bytes>> {
    let CqlType::Tuple(types) = ty else {
        unreachable!("tuple type")
    };
    match term {
        Term::Tuple(items) => {
            if items.len() != types.len() {
                return Err(CqlError::invalid(format!(
                    "Expected {} elements in value tuple, but got {}: {:?}",
                    types.len(),
                    items.len(),
                    columns
                )));
            }
            items
                .iter()
                .zip(types)
                .zip(columns)
                .map(|((t, ty), c)| key_value(ty, t, c, binds))
                .collect()
        }
        other => split_tuple(ty, &key_value(ty, other, "tuple", binds)?),
    }
}

fn split_tuple(ty: &CqlType, bytes: &[u8]) -> CqlResult<Vec<Bytes>> {
    match codec::decode(ty, bytes)? {
        crate::types::Value::Tuple(items) => items
            .into_iter()
            .map(|v| {
                v.map(|v| codec::encode(&v))
                    .ok_or_else(|| CqlError::invalid("Invalid null value in tuple"))
            })
            .collect(),
        _ => Err(CqlError::invalid("Expected a tuple value")),
    }
}

/// Every combination of one value per set, in order.
pub fn cartesian(sets: &[Vec<Bytes>]) -> Vec<Vec<Bytes>> {
    let mut out: Vec<Vec<Bytes>> = vec![Vec::new()];
    for set in sets {
        let mut next = Vec::with_capacity(out.len() * set.len());
        for prefix in &out {
            for v in set {
                let mut p = prefix.clone();
                p.push(v.clone());
                next.push(p);
            }
        }
        out = next;
    }
    out
}

/// Encodes a clustering prefix (serialized components) in byte-comparable form.
pub fn encode_prefix(table: &TableDef, components: &[Bytes]) -> CqlResult<Bytes> {
    let mut out = Vec::new();
    for (col, v) in table.clustering().iter().zip(components) {
        bytecomp::encode_component(
            &col.ty,
            v,
            col.order == crate::parser::ast::Order::Desc,
            &mut out,
        )?;
    }
    Ok(Bytes::from(out))
}

impl Where {
    /// Clustering ranges in storage order for the engine (empty = the whole partition).
    pub fn clustering_ranges(&self, table: &TableDef) -> CqlResult<Vec<ClusteringRange>> {
        if self.clustering_eq.is_empty()
            && self.clustering_slice.is_none()
            && self.multi_slice.is_none()
        {
            return Ok(Vec::new());
        }
        if let Some((start, end)) = &self.multi_slice {
            return Ok(vec![multi_slice_range(table, start, end)?]);
        }
        let prefixes = self.eq_prefixes();
        let mut ranges = Vec::with_capacity(prefixes.len());
        for prefix in prefixes {
            let p = encode_prefix(table, &prefix)?;
            match &self.clustering_slice {
                None => ranges.push(ClusteringRange {
                    start: ClusteringBound {
                        prefix: p.clone(),
                        inclusive: true,
                    },
                    end: ClusteringBound {
                        prefix: p,
                        inclusive: true,
                    },
                }),
                Some((lo, hi)) => {
                    let col = &table.clustering()[prefix.len()];
                    let desc = col.order == crate::parser::ast::Order::Desc;
                    let bound = |v: &Bytes| -> CqlResult<Bytes> {
                        let mut out = p.to_vec();
                        bytecomp::encode_component(&col.ty, v, desc, &mut out)?;
                        Ok(Bytes::from(out))
                    };
                    // For a DESC column larger values sort first, so the CQL lower bound
                    // becomes the storage end bound.
                    let (lo_s, hi_s) = if desc { (hi, lo) } else { (lo, hi) };
                    let start = match lo_s {
                        Some((v, inc)) => ClusteringBound {
                            prefix: bound(v)?,
                            inclusive: *inc,
                        },
                        None => ClusteringBound {
                            prefix: p.clone(),
                            inclusive: true,
                        },
                    };
                    let end = match hi_s {
                        Some((v, inc)) => ClusteringBound {
                            prefix: bound(v)?,
                            inclusive: *inc,
                        },
                        None => ClusteringBound {
                            prefix: p.clone(),
                            inclusive: true,
                        },
                    };
                    ranges.push(ClusteringRange { start, end });
                }
            }
        }
        ranges.sort_by(|a, b| a.start.prefix.cmp(&b.start.prefix));
        Ok(ranges)
    }

    /// Whether a row's clustering values lie inside the multi-column slice, compared as
    /// tuples of values (CQL compares tuples by value whatever the clustering order).
    pub fn multi_slice_matches(&self, table: &TableDef, values: &[Option<Bytes>]) -> bool {
        let Some((start, end)) = &self.multi_slice else {
            return true;
        };
        let pk = table.partition_key_len;
        let cmp = |bound: &[Bytes]| -> Ordering {
            for (i, b) in bound.iter().enumerate() {
                let col = &table.clustering()[i];
                let v = values[pk + i].as_deref().unwrap_or(&[]);
                let o = compare::compare(&col.ty, v, b);
                if o != Ordering::Equal {
                    return o;
                }
            }
            Ordering::Equal
        };
        if let Some((b, inc)) = start {
            let o = cmp(b);
            if o == Ordering::Less || (o == Ordering::Equal && !inc) {
                return false;
            }
        }
        if let Some((b, inc)) = end {
            let o = cmp(b);
            if o == Ordering::Greater || (o == Ordering::Equal && !inc) {
                return false;
            }
        }
        true
    }

    /// The EQ/IN clustering prefixes, in order.
    fn eq_prefixes(&self) -> Vec<Vec<Bytes>> {
        match &self.eq_tuples {
            None => cartesian(&self.clustering_eq),
            Some(tuples) => {
                let n = tuples.first().map_or(0, Vec::len);
                let rest = cartesian(&self.clustering_eq[n.min(self.clustering_eq.len())..]);
                let mut out = Vec::new();
                for t in tuples {
                    for r in &rest {
                        let mut p = t.clone();
                        p.extend(r.iter().cloned());
                        out.push(p);
                    }
                }
                out
            }
        }
    }

    /// Full clustering keys (serialized components) when every clustering column is fixed.
    pub fn full_clustering_keys(&self, table: &TableDef) -> Option<Vec<Vec<Bytes>>> {
        if self.clustering_eq.len() == table.clustering_len
            && self.clustering_slice.is_none()
            && self.multi_slice.is_none()
        {
            Some(self.eq_prefixes())
        } else {
            None
        }
    }
}

fn multi_slice_range(
    table: &TableDef,
    start: &MultiSliceBound,
    end: &MultiSliceBound,
) -> CqlResult<ClusteringRange> {
    let n = start
        .as_ref()
        .map(|s| s.0.len())
        .or(end.as_ref().map(|e| e.0.len()))
        .unwrap_or(0);
    let orders: Vec<_> = table.clustering()[..n].iter().map(|c| c.order).collect();
    if orders.windows(2).any(|w| w[0] != w[1]) {
        // Mixed orders make the tuple slice several storage ranges; the whole partition is
        // read and `Where::multi_slice_matches` keeps the rows inside the slice.
        return Ok(ClusteringRange {
            start: ClusteringBound {
                prefix: Bytes::new(),
                inclusive: true,
            },
            end: ClusteringBound {
                prefix: Bytes::new(),
                inclusive: true,
            },
        });
    }
    let desc = orders.first() == Some(&crate::parser::ast::Order::Desc);
    let (lo, hi) = if desc { (end, start) } else { (start, end) };
    let mk = |b: &MultiSliceBound| -> CqlResult<ClusteringBound> {
        Ok(match b {
            Some((vals, inc)) => ClusteringBound {
                prefix: encode_prefix(table, vals)?,
                inclusive: *inc,
            },
            None => ClusteringBound {
                prefix: Bytes::new(),
                inclusive: true,
            },
        })
    };
    Ok(ClusteringRange {
        start: mk(lo)?,
        end: mk(hi)?,
    })
}

/// Checks a row-level filter against a cell's serialized value (`None` = null).
pub fn filter_matches(table: &TableDef, f: &Filter, value: Option<&[u8]>) -> CqlResult<bool> {
    let ty = &table.columns[f.column].ty;
    let Some(v) = value else {
        return Ok(false);
    };
    if let (
        Some(key),
        CqlType::Map {
            key: kt, value: vt, ..
        },
    ) = (&f.map_key, ty)
    {
        // `m[key] op x`: the element's value is what is compared.
        let elements = codec::collection_elements(v, 2).unwrap_or_default();
        let Some(found) = elements
            .chunks(2)
            .find(|kv| compare::compare(kt, kv[0], key) == Ordering::Equal)
            .map(|kv| kv[1])
        else {
            return Ok(false);
        };
        let o = compare::compare(vt, found, &f.values[0]);
        return Ok(match f.op {
            Operator::Eq => o == Ordering::Equal,
            Operator::Ne => o != Ordering::Equal,
            Operator::Lt => o == Ordering::Less,
            Operator::Le => o != Ordering::Greater,
            Operator::Gt => o == Ordering::Greater,
            Operator::Ge => o != Ordering::Less,
            _ => false,
        });
    }
    let cmp = |other: &[u8]| compare::compare(ty, v, other);
    Ok(match f.op {
        Operator::Eq => cmp(&f.values[0]) == Ordering::Equal,
        Operator::Ne => cmp(&f.values[0]) != Ordering::Equal,
        Operator::Lt => cmp(&f.values[0]) == Ordering::Less,
        Operator::Le => cmp(&f.values[0]) != Ordering::Greater,
        Operator::Gt => cmp(&f.values[0]) == Ordering::Greater,
        Operator::Ge => cmp(&f.values[0]) != Ordering::Less,
        Operator::In => f.values.iter().any(|x| cmp(x) == Ordering::Equal),
        Operator::Contains | Operator::ContainsKey => {
            let decoded = codec::decode(ty, v)?;
            let (elem_ty, items): (&CqlType, Vec<crate::types::Value>) = match (&decoded, ty, f.op)
            {
                (crate::types::Value::List(xs), CqlType::List { elem, .. }, _)
                | (crate::types::Value::Set(xs), CqlType::Set { elem, .. }, _) => {
                    (elem, xs.clone())
                }
                (crate::types::Value::Map(kv), CqlType::Map { key, .. }, Operator::ContainsKey) => {
                    (key, kv.iter().map(|(k, _)| k.clone()).collect())
                }
                (crate::types::Value::Map(kv), CqlType::Map { value, .. }, _) => {
                    (value, kv.iter().map(|(_, v)| v.clone()).collect())
                }
                _ => return Ok(false),
            };
            items.iter().any(|x| {
                compare::compare(elem_ty, &codec::encode(x), &f.values[0]) == Ordering::Equal
            })
        }
        _ => false,
    })
}
