//! Bind markers: the column spec (name and type) of every marker in a statement, the
//! partition-key indexes drivers route with, and the values a request binds to them.

use std::sync::Arc;

use crate::error::{CqlError, CqlResult};
use crate::parser::Parsed;
use crate::parser::ast::*;
use crate::protocol::{BoundValue, ColumnSpec, Values};
use crate::schema::{ColumnKind, Schema, TableDef};
use crate::types::literal::{BindSource, Evaluated};
use crate::types::{CqlType, codec};

/// The markers of a statement.
#[derive(Debug, Default)]
pub struct Analysis {
    pub specs: Vec<ColumnSpec>,
    pub pk_indexes: Vec<u16>,
}

/// Resolves `[ks.]table` with Cassandra's errors.
pub fn resolve_table(
    schema: &Schema,
    keyspace: Option<&str>,
    name: &QualifiedName,
) -> CqlResult<Arc<TableDef>> {
    let ks_name = match name.keyspace.as_deref().or(keyspace) {
        Some(k) => k,
        None => {
            return Err(CqlError::invalid(
                "No keyspace has been specified. USE a keyspace, or explicitly specify keyspace.tablename",
            ));
        }
    };
    let ks = schema
        .keyspace(ks_name)
        .ok_or_else(|| CqlError::invalid(format!("keyspace {ks_name} does not exist")))?;
    ks.tables
        .get(&name.name)
        .cloned()
        .ok_or_else(|| CqlError::invalid(format!("table {} does not exist", name.name)))
}

struct Walker<'a> {
    table: Option<&'a TableDef>,
    ks: String,
    tname: String,
    specs: Vec<Option<ColumnSpec>>,
}

impl Walker<'_> {
    fn spec(&mut self, index: usize, name: impl Into<String>, ty: CqlType) {
        if index >= self.specs.len() {
            self.specs.resize(index + 1, None);
        }
        if self.specs[index].is_none() {
            self.specs[index] = Some(ColumnSpec {
                keyspace: self.ks.clone(),
                table: self.tname.clone(),
                name: name.into(),
                ty,
            });
        }
    }

    fn column_type(&self, name: &str) -> Option<CqlType> {
        self.table
            .and_then(|t| t.column(name))
            .map(|c| c.ty.clone())
    }

    fn term(&mut self, term: &Term, name: &str, ty: &CqlType) {
        match term {
            Term::Bind(m) => self.spec(
                m.index,
                m.name.clone().unwrap_or_else(|| name.to_string()),
                ty.clone(),
            ),
            Term::List(items) | Term::Set(items) => {
                let elem = match ty {
                    CqlType::List { elem, .. }
                    | CqlType::Set { elem, .. }
                    | CqlType::Vector { elem, .. } => (**elem).clone(),
                    _ => CqlType::Blob,
                };
                for i in items {
                    self.term(i, name, &elem);
                }
            }
            Term::Map(entries) => {
                let (k, v) = match ty {
                    CqlType::Map { key, value, .. } => ((**key).clone(), (**value).clone()),
                    CqlType::Udt { def, .. } => {
                        for (key, val) in entries {
                            let field = match key {
                                Term::Identifier(f) => Some(f.as_str()),
                                Term::Literal(Literal::String(f)) => Some(f.as_str()),
                                _ => None,
                            };
                            let fty = field
                                .and_then(|f| def.fields.iter().find(|(n, _)| n == f))
                                .map(|(_, t)| t.clone())
                                .unwrap_or(CqlType::Blob);
                            self.term(val, name, &fty);
                        }
                        return;
                    }
                    _ => (CqlType::Blob, CqlType::Blob),
                };
                for (key, val) in entries {
                    self.term(key, name, &k);
                    self.term(val, name, &v);
                }
            }
            Term::Udt(fields) => {
                for (f, val) in fields {
                    let fty = match ty {
                        CqlType::Udt { def, .. } => def
                            .fields
                            .iter()
                            .find(|(n, _)| n == f)
                            .map(|(_, t)| t.clone()),
                        _ => None,
                    }
                    .unwrap_or(CqlType::Blob);
                    self.term(val, name, &fty);
                }
            }
            Term::Tuple(items) => {
                for (i, item) in items.iter().enumerate() {
                    let ity = match ty {
                        CqlType::Tuple(ts) => ts.get(i).cloned().unwrap_or(CqlType::Blob),
                        _ => CqlType::Blob,
                    };
                    self.term(item, name, &ity);
                }
            }
            Term::Cast { term, .. } | Term::Negate(term) => self.term(term, name, ty),
            Term::FunctionCall { name: fname, args } => {
                let arg_types: Vec<Option<CqlType>> = args.iter().map(|_| None).collect();
                let resolved =
                    crate::types::functions::resolve(&fname.name, &arg_types, Some(ty)).ok();
                for (i, a) in args.iter().enumerate() {
                    let aty = resolved
                        .as_ref()
                        .and_then(|f| f.arg_types.get(i).cloned())
                        .unwrap_or(CqlType::Blob);
                    self.term(a, &format!("arg{i}({})", fname.name), &aty);
                }
            }
            Term::Literal(_) | Term::Identifier(_) => {}
        }
    }

    fn relation_value(&mut self, column: &str, op: Operator, value: &RelationValue) {
        let Some(cty) = self.column_type(column) else {
            return;
        };
        let ty = match op {
            Operator::Contains => match &cty {
                CqlType::List { elem, .. } | CqlType::Set { elem, .. } => (**elem).clone(),
                CqlType::Map { value, .. } => (**value).clone(),
                _ => cty.clone(),
            },
            Operator::ContainsKey => match &cty {
                CqlType::Map { key, .. } => (**key).clone(),
                _ => cty.clone(),
            },
            _ => cty.clone(),
        };
        match value {
            RelationValue::Single(t) => self.term(t, column, &ty),
            RelationValue::InList(ts) => {
                for t in ts {
                    self.term(t, column, &ty);
                }
            }
            RelationValue::InMarker(m) => self.spec(
                m.index,
                m.name.clone().unwrap_or_else(|| format!("in({column})")),
                CqlType::List {
                    elem: Box::new(ty),
                    frozen: false,
                },
            ),
        }
    }

    fn relations(&mut self, where_clause: &[Relation]) {
        for r in where_clause {
            match r {
                Relation::Column { column, op, value } => self.relation_value(column, *op, value),
                Relation::MapEntry {
                    column, key, value, ..
                } => {
                    if let Some(CqlType::Map {
                        key: kt, value: vt, ..
                    }) = self.column_type(column)
                    {
                        self.term(key, column, &kt);
                        self.term(value, column, &vt);
                    }
                }
                Relation::Token { value, .. } => {
                    self.term(value, "partition key token", &CqlType::Bigint)
                }
                Relation::MultiColumn { columns, value, .. } => {
                    let types: Vec<CqlType> = columns
                        .iter()
                        .map(|c| self.column_type(c).unwrap_or(CqlType::Blob))
                        .collect();
                    let tuple = CqlType::Tuple(types.clone());
                    let label = format!("({})", columns.join(","));
                    let one = |w: &mut Self, t: &Term| match t {
                        Term::Tuple(items) => {
                            for (i, item) in items.iter().enumerate() {
                                let name = columns.get(i).cloned().unwrap_or_default();
                                w.term(item, &name, types.get(i).unwrap_or(&CqlType::Blob));
                            }
                        }
                        other => w.term(other, &label, &tuple),
                    };
                    match value {
                        RelationValue::Single(t) => one(self, t),
                        RelationValue::InList(ts) => {
                            for t in ts {
                                one(self, t);
                            }
                        }
                        RelationValue::InMarker(m) => self.spec(
                            m.index,
                            format!("in({label})"),
                            CqlType::List {
                                elem: Box::new(tuple.clone()),
                                frozen: false,
                            },
                        ),
                    }
                }
            }
        }
    }

    fn using(&mut self, using: &UsingClause) {
        if let Some(t) = &using.ttl {
            self.term(t, "[ttl]", &CqlType::Int);
        }
        if let Some(t) = &using.timestamp {
            self.term(t, "[timestamp]", &CqlType::Bigint);
        }
    }

    fn target(&mut self, target: &ColumnTarget, value: &Term) {
        match target {
            ColumnTarget::Column(c) => {
                if let Some(ty) = self.column_type(c) {
                    self.term(value, c, &ty);
                }
            }
            ColumnTarget::Element(c, key) => {
                let ty = self.column_type(c);
                let (kt, vt) = match ty {
                    Some(CqlType::Map { key, value, .. }) => ((*key).clone(), (*value).clone()),
                    Some(CqlType::List { elem, .. }) => (CqlType::Int, (*elem).clone()),
                    _ => (CqlType::Blob, CqlType::Blob),
                };
                let kname = if matches!(kt, CqlType::Int) {
                    format!("idx({c})")
                } else {
                    format!("key({c})")
                };
                self.term(key, &kname, &kt);
                self.term(value, &format!("value({c})"), &vt);
            }
            ColumnTarget::Field(c, f) => {
                let fty = match self.column_type(c) {
                    Some(CqlType::Udt { def, .. }) => def
                        .fields
                        .iter()
                        .find(|(n, _)| n == f)
                        .map(|(_, t)| t.clone()),
                    _ => None,
                }
                .unwrap_or(CqlType::Blob);
                self.term(value, &format!("{c}.{f}"), &fty);
            }
        }
    }

    fn conditions(&mut self, conditions: &Option<Conditions>) {
        if let Some(Conditions::If(conds)) = conditions {
            for c in conds {
                match (&c.target, &c.value) {
                    (target, RelationValue::Single(t)) => self.target(target, t),
                    (ColumnTarget::Column(col), v) => self.relation_value(col, c.op, v),
                    (target, RelationValue::InList(ts)) => {
                        for t in ts {
                            self.target(target, t);
                        }
                    }
                    (_, RelationValue::InMarker(m)) => self.spec(m.index, "in", CqlType::Blob),
                }
            }
        }
    }

    fn selector(&mut self, s: &Selector) {
        match s {
            Selector::Term(t) => self.term(t, "selector", &CqlType::Blob),
            Selector::Function { args, .. } => {
                for a in args {
                    self.selector(a);
                }
            }
            Selector::Cast { selector, .. } | Selector::Field { selector, .. } => {
                self.selector(selector)
            }
            _ => {}
        }
    }
}

/// Types every bind marker of `parsed` and finds the partition-key indexes.
pub fn analyze(schema: &Schema, keyspace: Option<&str>, parsed: &Parsed) -> CqlResult<Analysis> {
    if parsed.bind_count == 0 {
        return Ok(Analysis::default());
    }
    let mut specs = vec![None; parsed.bind_count];
    let mut pk_indexes = Vec::new();
    walk(
        schema,
        keyspace,
        &parsed.statement,
        &mut specs,
        &mut pk_indexes,
    )?;
    let specs = specs
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            s.unwrap_or(ColumnSpec {
                keyspace: keyspace.unwrap_or_default().to_string(),
                table: String::new(),
                name: parsed
                    .bind_names
                    .get(i)
                    .cloned()
                    .flatten()
                    .unwrap_or_else(|| format!("arg{i}")),
                ty: CqlType::Blob,
            })
        })
        .collect();
    Ok(Analysis { specs, pk_indexes })
}

fn walk(
    schema: &Schema,
    keyspace: Option<&str>,
    statement: &Statement,
    specs: &mut Vec<Option<ColumnSpec>>,
    pk_indexes: &mut Vec<u16>,
) -> CqlResult<()> {
    let table_of = |name: &QualifiedName| resolve_table(schema, keyspace, name);
    let mut walker = |table: &Arc<TableDef>, f: &mut dyn FnMut(&mut Walker)| {
        let mut w = Walker {
            table: Some(table),
            ks: table.keyspace.clone(),
            tname: table.name.clone(),
            specs: std::mem::take(specs),
        };
        f(&mut w);
        *specs = w.specs;
    };
    match statement {
        Statement::Select(s) => {
            let t = table_of(&s.table)?;
            walker(&t, &mut |w| {
                for item in &s.selection {
                    w.selector(&item.selector);
                }
                w.relations(&s.where_clause);
                if let Some(l) = &s.per_partition_limit {
                    w.term(l, "[per_partition_limit]", &CqlType::Int);
                }
                if let Some(l) = &s.limit {
                    w.term(l, "[limit]", &CqlType::Int);
                }
            });
            *pk_indexes = pk_indexes_from_where(&t, &s.where_clause);
        }
        Statement::Insert(i) => {
            let t = table_of(&i.table)?;
            walker(&t, &mut |w| {
                match &i.values {
                    InsertValues::Values { columns, values } => {
                        for (c, v) in columns.iter().zip(values) {
                            if let Some(ty) = w.column_type(c) {
                                w.term(v, c, &ty);
                            }
                        }
                    }
                    InsertValues::Json { json, .. } => w.term(json, "[json]", &CqlType::Text),
                }
                w.using(&i.using);
            });
            if let InsertValues::Values { columns, values } = &i.values {
                let mut idx = Vec::new();
                for pk in t.partition_key() {
                    match columns
                        .iter()
                        .position(|c| c == &pk.name)
                        .and_then(|p| values.get(p))
                    {
                        Some(Term::Bind(m)) => idx.push(m.index as u16),
                        _ => {
                            idx.clear();
                            break;
                        }
                    }
                }
                *pk_indexes = idx;
            }
        }
        Statement::Update(u) => {
            let t = table_of(&u.table)?;
            walker(&t, &mut |w| {
                w.using(&u.using);
                for a in &u.assignments {
                    let v = match &a.value {
                        AssignValue::Set(v)
                        | AssignValue::Add(v)
                        | AssignValue::Subtract(v)
                        | AssignValue::Prepend(v) => v,
                    };
                    // `c = c + ?` on a list/set/map binds a collection of the column's type;
                    // `m = m - ?` on a map binds a set of keys.
                    let is_map_sub = matches!(a.value, AssignValue::Subtract(_))
                        && matches!(&a.target, ColumnTarget::Column(c) if matches!(w.column_type(c), Some(CqlType::Map { .. })));
                    if is_map_sub && let ColumnTarget::Column(c) = &a.target {
                        if let Some(CqlType::Map { key, .. }) = w.column_type(c) {
                            w.term(
                                v,
                                c,
                                &CqlType::Set {
                                    elem: key,
                                    frozen: false,
                                },
                            );
                        }
                        continue;
                    }
                    w.target(&a.target, v);
                }
                w.relations(&u.where_clause);
                w.conditions(&u.conditions);
            });
            *pk_indexes = pk_indexes_from_where(&t, &u.where_clause);
        }
        Statement::Delete(d) => {
            let t = table_of(&d.table)?;
            walker(&t, &mut |w| {
                for target in &d.targets {
                    if let ColumnTarget::Element(c, key) = target {
                        let kt = match w.column_type(c) {
                            Some(CqlType::Map { key, .. }) => (*key).clone(),
                            Some(CqlType::List { .. }) => CqlType::Int,
                            Some(CqlType::Set { elem, .. }) => (*elem).clone(),
                            _ => CqlType::Blob,
                        };
                        w.term(key, &format!("key({c})"), &kt);
                    }
                }
                w.using(&d.using);
                w.relations(&d.where_clause);
                w.conditions(&d.conditions);
            });
            *pk_indexes = pk_indexes_from_where(&t, &d.where_clause);
        }
        Statement::Batch(b) => {
            if let Some(ts) = &b.using.timestamp {
                let mut w = Walker {
                    table: None,
                    ks: String::new(),
                    tname: String::new(),
                    specs: std::mem::take(specs),
                };
                w.term(ts, "[timestamp]", &CqlType::Bigint);
                *specs = w.specs;
            }
            for s in &b.statements {
                let mut ignored = Vec::new();
                walk(schema, keyspace, s, specs, &mut ignored)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn pk_indexes_from_where(t: &TableDef, where_clause: &[Relation]) -> Vec<u16> {
    let mut out = Vec::new();
    for pk in t.partition_key() {
        let found = where_clause.iter().find_map(|r| match r {
            Relation::Column {
                column,
                op: Operator::Eq,
                value: RelationValue::Single(Term::Bind(m)),
            } if column == &pk.name => Some(m.index as u16),
            _ => None,
        });
        match found {
            Some(i) => out.push(i),
            None => return Vec::new(),
        }
    }
    debug_assert!(
        t.partition_key()
            .iter()
            .all(|c| c.kind == ColumnKind::PartitionKey)
    );
    out
}

/// The values bound to a statement's markers, by marker index.
pub struct Bound<'a> {
    specs: &'a [ColumnSpec],
    values: Vec<&'a BoundValue>,
}

impl<'a> Bound<'a> {
    pub fn new(
        specs: &'a [ColumnSpec],
        names: &[Option<String>],
        values: &'a Values,
    ) -> CqlResult<Bound<'a>> {
        if values.values.len() != specs.len() {
            return Err(CqlError::invalid("Invalid amount of bind variables"));
        }
        let ordered = match &values.names {
            None => values.values.iter().collect(),
            Some(given) => {
                let mut out = Vec::with_capacity(specs.len());
                for (i, spec) in specs.iter().enumerate() {
                    let want = names
                        .get(i)
                        .cloned()
                        .flatten()
                        .unwrap_or_else(|| spec.name.clone());
                    let pos = given
                        .iter()
                        .position(|g| g == &want || g.eq_ignore_ascii_case(&want))
                        .ok_or_else(|| {
                            CqlError::invalid(format!("No value for bind marker {want}"))
                        })?;
                    out.push(&values.values[pos]);
                }
                out
            }
        };
        Ok(Bound {
            specs,
            values: ordered,
        })
    }

    /// A bound without markers.
    pub fn empty() -> Bound<'static> {
        Bound {
            specs: &[],
            values: Vec::new(),
        }
    }
}

impl BindSource for Bound<'_> {
    fn bound(&self, marker: &BindMarker) -> CqlResult<Evaluated> {
        let value = self.values.get(marker.index).ok_or_else(|| {
            CqlError::invalid(format!("No value bound for marker {}", marker.index))
        })?;
        match value {
            BoundValue::Null => Ok(Evaluated::Null),
            BoundValue::Unset => Ok(Evaluated::Unset),
            BoundValue::Value(b) => {
                if let Some(spec) = self.specs.get(marker.index) {
                    codec::validate(&spec.ty, b).map_err(|e| {
                        CqlError::invalid(format!("Invalid value for column {}: {e}", spec.name))
                    })?;
                }
                Ok(Evaluated::Value(b.clone()))
            }
        }
    }
}
