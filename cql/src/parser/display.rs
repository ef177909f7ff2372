//! Canonical CQL text for the AST. Printing then parsing gives back the same AST: identifiers
//! are quoted when the lexer would not read them back as the same name, and clauses that hold
//! bind markers are printed in the order the parser numbers them.

use std::fmt::{self, Display, Formatter, Write};

use super::ast::*;
use super::lexer::{Tok, scan_word_kind};
use super::parse::is_reserved;

/// An identifier as CQL text: bare when it reads back unchanged, else `"quoted"`.
pub struct Ident<'a>(pub &'a str);

impl Display for Ident<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if is_bare_ident(self.0) {
            f.write_str(self.0)
        } else {
            f.write_char('"')?;
            for c in self.0.chars() {
                if c == '"' {
                    f.write_str("\"\"")?;
                } else {
                    f.write_char(c)?;
                }
            }
            f.write_char('"')
        }
    }
}

fn is_bare_ident(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
        && !is_reserved(s)
        && scan_word_kind(s) == Tok::Ident
}

/// A function name part: `token` is reserved but is a valid function name.
struct FnName<'a>(&'a QualifiedName);

impl Display for FnName<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if let Some(ks) = &self.0.keyspace {
            write!(f, "{}.", Ident(ks))?;
        }
        if self.0.name == "token" {
            f.write_str("token")
        } else {
            write!(f, "{}", Ident(&self.0.name))
        }
    }
}

/// Writes `items` separated by `sep`.
fn join<T: Display>(f: &mut Formatter<'_>, items: &[T], sep: &str) -> fmt::Result {
    for (i, it) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(sep)?;
        }
        write!(f, "{it}")?;
    }
    Ok(())
}

fn join_idents(f: &mut Formatter<'_>, items: &[String]) -> fmt::Result {
    for (i, it) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{}", Ident(it))?;
    }
    Ok(())
}

fn write_string_literal(f: &mut Formatter<'_>, s: &str) -> fmt::Result {
    f.write_char('\'')?;
    for c in s.chars() {
        if c == '\'' {
            f.write_str("''")?;
        } else {
            f.write_char(c)?;
        }
    }
    f.write_char('\'')
}

impl Display for QualifiedName {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if let Some(ks) = &self.keyspace {
            write!(f, "{}.", Ident(ks))?;
        }
        write!(f, "{}", Ident(&self.name))
    }
}

impl Display for Literal {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Literal::String(s) => write_string_literal(f, s),
            Literal::Integer(s) | Literal::Float(s) | Literal::Uuid(s) | Literal::Duration(s) => {
                f.write_str(s)
            }
            Literal::NaN => f.write_str("NaN"),
            Literal::Infinity => f.write_str("Infinity"),
            Literal::NegInfinity => f.write_str("-Infinity"),
            Literal::Boolean(b) => write!(f, "{b}"),
            Literal::Blob(s) => write!(f, "0x{s}"),
            Literal::Null => f.write_str("null"),
        }
    }
}

impl Display for BindMarker {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(n) => write!(f, ":{}", Ident(n)),
            None => f.write_char('?'),
        }
    }
}

impl Display for Term {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Term::Literal(l) => write!(f, "{l}"),
            Term::Bind(b) => write!(f, "{b}"),
            Term::List(items) => {
                f.write_char('[')?;
                join(f, items, ", ")?;
                f.write_char(']')
            }
            Term::Set(items) => {
                f.write_char('{')?;
                join(f, items, ", ")?;
                f.write_char('}')
            }
            Term::Map(entries) => {
                f.write_char('{')?;
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k}: {v}")?;
                }
                f.write_char('}')
            }
            Term::Tuple(items) => {
                f.write_char('(')?;
                join(f, items, ", ")?;
                f.write_char(')')
            }
            Term::Udt(fields) => {
                f.write_char('{')?;
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{}: {v}", Ident(k))?;
                }
                f.write_char('}')
            }
            Term::Identifier(s) => write!(f, "{}", Ident(s)),
            Term::FunctionCall { name, args } => {
                write!(f, "{}(", FnName(name))?;
                join(f, args, ", ")?;
                f.write_char(')')
            }
            Term::Cast { ty, term } => write!(f, "({ty}) {term}"),
            // The space keeps `- -1` from becoming a `--` comment.
            Term::Negate(t) => write!(f, "- {t}"),
        }
    }
}

impl Display for TypeExpr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            TypeExpr::Native(n) => f.write_str(n),
            TypeExpr::List(t) => write!(f, "list<{t}>"),
            TypeExpr::Set(t) => write!(f, "set<{t}>"),
            TypeExpr::Map(k, v) => write!(f, "map<{k}, {v}>"),
            TypeExpr::Tuple(ts) => {
                f.write_str("tuple<")?;
                join(f, ts, ", ")?;
                f.write_char('>')
            }
            TypeExpr::Frozen(t) => write!(f, "frozen<{t}>"),
            TypeExpr::Vector(t, n) => write!(f, "vector<{t}, {n}>"),
            TypeExpr::UserDefined(q) => write!(f, "{q}"),
            TypeExpr::Custom(c) => write_string_literal(f, c),
        }
    }
}

impl Display for Operator {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
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
        })
    }
}

impl Display for RelationValue {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            RelationValue::Single(t) => write!(f, "{t}"),
            RelationValue::InList(ts) => {
                f.write_char('(')?;
                join(f, ts, ", ")?;
                f.write_char(')')
            }
            RelationValue::InMarker(m) => write!(f, "{m}"),
        }
    }
}

/// `op value`, where `IS NOT` always goes with `NULL`.
fn write_op_value(f: &mut Formatter<'_>, op: Operator, value: &RelationValue) -> fmt::Result {
    if op == Operator::IsNot {
        f.write_str("IS NOT NULL")
    } else {
        write!(f, "{op} {value}")
    }
}

impl Display for Relation {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Relation::Column { column, op, value } => {
                write!(f, "{} ", Ident(column))?;
                write_op_value(f, *op, value)
            }
            Relation::MapEntry {
                column,
                key,
                op,
                value,
            } => write!(f, "{}[{key}] {op} {value}", Ident(column)),
            Relation::Token { columns, op, value } => {
                f.write_str("token(")?;
                join_idents(f, columns)?;
                write!(f, ") {op} {value}")
            }
            Relation::MultiColumn { columns, op, value } => {
                f.write_char('(')?;
                join_idents(f, columns)?;
                f.write_str(") ")?;
                write_op_value(f, *op, value)
            }
        }
    }
}

impl Display for Selector {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Selector::Column(c) => write!(f, "{}", Ident(c)),
            Selector::WriteTime(c) => write!(f, "writetime({})", Ident(c)),
            Selector::Ttl(c) => write!(f, "ttl({})", Ident(c)),
            Selector::CountStar => f.write_str("count(*)"),
            Selector::Function { name, args } => {
                write!(f, "{}(", FnName(name))?;
                join(f, args, ", ")?;
                f.write_char(')')
            }
            Selector::Cast { selector, ty } => write!(f, "cast({selector} AS {ty})"),
            Selector::Field { selector, field } => write!(f, "{selector}.{}", Ident(field)),
            Selector::Term(t) => write!(f, "{t}"),
        }
    }
}

impl Display for SelectItem {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.selector)?;
        if let Some(a) = &self.alias {
            write!(f, " AS {}", Ident(a))?;
        }
        Ok(())
    }
}

fn write_where(f: &mut Formatter<'_>, rels: &[Relation]) -> fmt::Result {
    if !rels.is_empty() {
        f.write_str(" WHERE ")?;
        join(f, rels, " AND ")?;
    }
    Ok(())
}

impl Display for Order {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Order::Asc => "ASC",
            Order::Desc => "DESC",
        })
    }
}

impl Display for SelectStatement {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str("SELECT ")?;
        if self.json {
            f.write_str("JSON ")?;
        }
        if self.distinct {
            f.write_str("DISTINCT ")?;
        }
        if self.selection.is_empty() {
            f.write_char('*')?;
        } else {
            join(f, &self.selection, ", ")?;
        }
        write!(f, " FROM {}", self.table)?;
        write_where(f, &self.where_clause)?;
        if !self.group_by.is_empty() {
            f.write_str(" GROUP BY ")?;
            join_idents(f, &self.group_by)?;
        }
        if !self.order_by.is_empty() {
            f.write_str(" ORDER BY ")?;
            for (i, (c, o)) in self.order_by.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{} {o}", Ident(c))?;
            }
        }
        if let Some(l) = &self.per_partition_limit {
            write!(f, " PER PARTITION LIMIT {l}")?;
        }
        if let Some(l) = &self.limit {
            write!(f, " LIMIT {l}")?;
        }
        if self.allow_filtering {
            f.write_str(" ALLOW FILTERING")?;
        }
        Ok(())
    }
}

fn first_bind(t: &Term) -> Option<usize> {
    match t {
        Term::Bind(b) => Some(b.index),
        _ => None,
    }
}

impl Display for UsingClause {
    /// ` USING TTL x AND TIMESTAMP y`, or nothing; markers keep their original order.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<(&str, &Term)> = Vec::with_capacity(2);
        if let Some(t) = &self.ttl {
            parts.push(("TTL", t));
        }
        if let Some(t) = &self.timestamp {
            parts.push(("TIMESTAMP", t));
        }
        if parts.is_empty() {
            return Ok(());
        }
        if parts.len() == 2
            && let (Some(a), Some(b)) = (first_bind(parts[0].1), first_bind(parts[1].1))
            && b < a
        {
            parts.swap(0, 1);
        }
        f.write_str(" USING ")?;
        for (i, (k, t)) in parts.iter().enumerate() {
            if i > 0 {
                f.write_str(" AND ")?;
            }
            write!(f, "{k} {t}")?;
        }
        Ok(())
    }
}

impl Display for InsertStatement {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "INSERT INTO {} ", self.table)?;
        match &self.values {
            InsertValues::Values { columns, values } => {
                f.write_char('(')?;
                join_idents(f, columns)?;
                f.write_str(") VALUES (")?;
                join(f, values, ", ")?;
                f.write_char(')')?;
            }
            InsertValues::Json {
                json,
                default_unset,
            } => {
                write!(f, "JSON {json}")?;
                if *default_unset {
                    f.write_str(" DEFAULT UNSET")?;
                }
            }
        }
        if self.if_not_exists {
            f.write_str(" IF NOT EXISTS")?;
        }
        write!(f, "{}", self.using)
    }
}

impl Display for ColumnTarget {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            ColumnTarget::Column(c) => write!(f, "{}", Ident(c)),
            ColumnTarget::Element(c, k) => write!(f, "{}[{k}]", Ident(c)),
            ColumnTarget::Field(c, x) => write!(f, "{}.{}", Ident(c), Ident(x)),
        }
    }
}

impl Display for Assignment {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let t = &self.target;
        match &self.value {
            AssignValue::Set(v) => write!(f, "{t} = {v}"),
            AssignValue::Add(v) => match t {
                ColumnTarget::Column(_) => write!(f, "{t} = {t} + {v}"),
                _ => write!(f, "{t} += {v}"),
            },
            AssignValue::Subtract(v) => match t {
                ColumnTarget::Column(_) => write!(f, "{t} = {t} - {v}"),
                _ => write!(f, "{t} -= {v}"),
            },
            AssignValue::Prepend(v) => write!(f, "{t} = {v} + {t}"),
        }
    }
}

impl Display for Condition {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{} ", self.target)?;
        write_op_value(f, self.op, &self.value)
    }
}

fn write_conditions(f: &mut Formatter<'_>, c: &Option<Conditions>) -> fmt::Result {
    match c {
        None => Ok(()),
        Some(Conditions::IfExists) => f.write_str(" IF EXISTS"),
        Some(Conditions::If(cs)) => {
            f.write_str(" IF ")?;
            join(f, cs, " AND ")
        }
    }
}

impl Display for UpdateStatement {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "UPDATE {}{} SET ", self.table, self.using)?;
        join(f, &self.assignments, ", ")?;
        write_where(f, &self.where_clause)?;
        write_conditions(f, &self.conditions)
    }
}

impl Display for DeleteStatement {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str("DELETE ")?;
        if !self.targets.is_empty() {
            join(f, &self.targets, ", ")?;
            f.write_char(' ')?;
        }
        write!(f, "FROM {}{}", self.table, self.using)?;
        write_where(f, &self.where_clause)?;
        write_conditions(f, &self.conditions)
    }
}

impl Display for BatchStatement {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(match self.kind {
            BatchKind::Logged => "BEGIN BATCH",
            BatchKind::Unlogged => "BEGIN UNLOGGED BATCH",
            BatchKind::Counter => "BEGIN COUNTER BATCH",
        })?;
        write!(f, "{}", self.using)?;
        for s in &self.statements {
            write!(f, " {s};")?;
        }
        f.write_str(" APPLY BATCH")
    }
}

impl Display for PropertyValue {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            PropertyValue::Constant(l) => write!(f, "{l}"),
            PropertyValue::Identifier(s) => f.write_str(s),
            PropertyValue::Map(entries) => write_literal_map(f, entries),
        }
    }
}

fn write_literal_map(f: &mut Formatter<'_>, entries: &[(Literal, Literal)]) -> fmt::Result {
    f.write_char('{')?;
    for (i, (k, v)) in entries.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{k}: {v}")?;
    }
    f.write_char('}')
}

impl Display for Property {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{} = {}", Ident(&self.name), self.value)
    }
}

impl Display for ColumnDefinition {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", Ident(&self.name), self.ty)?;
        if self.is_static {
            f.write_str(" STATIC")?;
        }
        if self.primary_key {
            f.write_str(" PRIMARY KEY")?;
        }
        Ok(())
    }
}

impl Display for CreateTableStatement {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str("CREATE TABLE ")?;
        if self.if_not_exists {
            f.write_str("IF NOT EXISTS ")?;
        }
        write!(f, "{} (", self.name)?;
        join(f, &self.columns, ", ")?;
        if let Some((pk, ck)) = &self.primary_key {
            if !self.columns.is_empty() {
                f.write_str(", ")?;
            }
            f.write_str("PRIMARY KEY ((")?;
            join_idents(f, pk)?;
            f.write_char(')')?;
            for c in ck {
                write!(f, ", {}", Ident(c))?;
            }
            f.write_char(')')?;
        }
        f.write_char(')')?;
        let mut first = true;
        let mut sep = |f: &mut Formatter<'_>| -> fmt::Result {
            let s = if first { " WITH " } else { " AND " };
            first = false;
            f.write_str(s)
        };
        if !self.clustering_order.is_empty() {
            sep(f)?;
            f.write_str("CLUSTERING ORDER BY (")?;
            for (i, (c, o)) in self.clustering_order.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{} {o}", Ident(c))?;
            }
            f.write_char(')')?;
        }
        if self.compact_storage {
            sep(f)?;
            f.write_str("COMPACT STORAGE")?;
        }
        for p in &self.properties {
            sep(f)?;
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

fn write_with(f: &mut Formatter<'_>, props: &[Property]) -> fmt::Result {
    if !props.is_empty() {
        f.write_str(" WITH ")?;
        join(f, props, " AND ")?;
    }
    Ok(())
}

fn write_renames(f: &mut Formatter<'_>, renames: &[(String, String)]) -> fmt::Result {
    for (i, (a, b)) in renames.iter().enumerate() {
        if i > 0 {
            f.write_str(" AND ")?;
        }
        write!(f, "{} TO {}", Ident(a), Ident(b))?;
    }
    Ok(())
}

impl Display for AlterTableStatement {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str("ALTER TABLE ")?;
        if self.if_exists {
            f.write_str("IF EXISTS ")?;
        }
        write!(f, "{} ", self.name)?;
        match &self.action {
            AlterTableAction::Add {
                columns,
                if_not_exists,
            } => {
                f.write_str("ADD ")?;
                if *if_not_exists {
                    f.write_str("IF NOT EXISTS ")?;
                }
                f.write_char('(')?;
                join(f, columns, ", ")?;
                f.write_char(')')
            }
            AlterTableAction::Drop {
                columns,
                if_exists,
                timestamp,
            } => {
                f.write_str("DROP ")?;
                if *if_exists {
                    f.write_str("IF EXISTS ")?;
                }
                f.write_char('(')?;
                join_idents(f, columns)?;
                f.write_char(')')?;
                if let Some(t) = timestamp {
                    write!(f, " USING TIMESTAMP {t}")?;
                }
                Ok(())
            }
            AlterTableAction::Rename { renames, if_exists } => {
                f.write_str("RENAME ")?;
                if *if_exists {
                    f.write_str("IF EXISTS ")?;
                }
                write_renames(f, renames)
            }
            AlterTableAction::AlterType { column, ty } => {
                write!(f, "ALTER {} TYPE {ty}", Ident(column))
            }
            AlterTableAction::With(props) => {
                f.write_str("WITH ")?;
                join(f, props, " AND ")
            }
        }
    }
}

impl Display for CreateIndexStatement {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str("CREATE ")?;
        if self.custom_class.is_some() {
            f.write_str("CUSTOM ")?;
        }
        f.write_str("INDEX ")?;
        if self.if_not_exists {
            f.write_str("IF NOT EXISTS ")?;
        }
        if let Some(n) = &self.name {
            write!(f, "{} ", Ident(n))?;
        }
        write!(f, "ON {} (", self.table)?;
        for (i, (c, k)) in self.targets.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            let c = Ident(c);
            match k {
                IndexTargetKind::Simple => write!(f, "{c}")?,
                IndexTargetKind::Values => write!(f, "values({c})")?,
                IndexTargetKind::Keys => write!(f, "keys({c})")?,
                IndexTargetKind::Entries => write!(f, "entries({c})")?,
                IndexTargetKind::Full => write!(f, "full({c})")?,
            }
        }
        f.write_char(')')?;
        if let Some(c) = &self.custom_class {
            f.write_str(" USING ")?;
            write_string_literal(f, c)?;
        }
        write_with(f, &self.properties)
    }
}

impl Display for DescribeStatement {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str("DESCRIBE ")?;
        match &self.target {
            DescribeTarget::Cluster => f.write_str("CLUSTER")?,
            DescribeTarget::Schema { full } => {
                f.write_str(if *full { "FULL SCHEMA" } else { "SCHEMA" })?
            }
            DescribeTarget::Keyspaces => f.write_str("KEYSPACES")?,
            DescribeTarget::Keyspace { name, only } => {
                if *only {
                    f.write_str("ONLY ")?;
                }
                f.write_str("KEYSPACE")?;
                if let Some(n) = name {
                    write!(f, " {}", Ident(n))?;
                }
            }
            DescribeTarget::Tables => f.write_str("TABLES")?,
            DescribeTarget::Table(q) => write!(f, "TABLE {q}")?,
            DescribeTarget::Types => f.write_str("TYPES")?,
            DescribeTarget::Type(q) => write!(f, "TYPE {q}")?,
            DescribeTarget::Functions => f.write_str("FUNCTIONS")?,
            DescribeTarget::Function(q) => write!(f, "FUNCTION {}", FnName(q))?,
            DescribeTarget::Aggregates => f.write_str("AGGREGATES")?,
            DescribeTarget::Aggregate(q) => write!(f, "AGGREGATE {}", FnName(q))?,
            DescribeTarget::Index(q) => write!(f, "INDEX {q}")?,
            DescribeTarget::MaterializedView(q) => write!(f, "MATERIALIZED VIEW {q}")?,
            DescribeTarget::Generic(q) => write!(f, "{q}")?,
        }
        if self.with_internals {
            f.write_str(" WITH INTERNALS")?;
        }
        Ok(())
    }
}

/// A role name: kept exactly, so printed as a string literal.
struct RoleName<'a>(&'a str);

impl Display for RoleName<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if is_bare_ident(self.0) {
            f.write_str(self.0)
        } else {
            write_string_literal(f, self.0)
        }
    }
}

impl Display for RoleOptions {
    /// ` WITH opt AND ...`, or nothing.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut sep = |f: &mut Formatter<'_>| -> fmt::Result {
            let s = if first { " WITH " } else { " AND " };
            first = false;
            f.write_str(s)
        };
        if let Some(p) = &self.password {
            sep(f)?;
            f.write_str("PASSWORD = ")?;
            write_string_literal(f, p)?;
        }
        if let Some(p) = &self.hashed_password {
            sep(f)?;
            f.write_str("HASHED PASSWORD = ")?;
            write_string_literal(f, p)?;
        }
        if let Some(b) = self.login {
            sep(f)?;
            write!(f, "LOGIN = {b}")?;
        }
        if let Some(b) = self.superuser {
            sep(f)?;
            write!(f, "SUPERUSER = {b}")?;
        }
        if let Some(m) = &self.options {
            sep(f)?;
            f.write_str("OPTIONS = ")?;
            write_literal_map(f, m)?;
        }
        if let Some(dcs) = &self.access_to_datacenters {
            sep(f)?;
            f.write_str("ACCESS TO DATACENTERS {")?;
            for (i, d) in dcs.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write_string_literal(f, d)?;
            }
            f.write_char('}')?;
        }
        Ok(())
    }
}

impl Display for Resource {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Resource::AllKeyspaces => f.write_str("ALL KEYSPACES"),
            Resource::Keyspace(k) => write!(f, "KEYSPACE {}", Ident(k)),
            Resource::Table(q) => write!(f, "TABLE {q}"),
            Resource::AllRoles => f.write_str("ALL ROLES"),
            Resource::Role(r) => write!(f, "ROLE {}", RoleName(r)),
            Resource::AllFunctions { keyspace: None } => f.write_str("ALL FUNCTIONS"),
            Resource::AllFunctions { keyspace: Some(k) } => {
                write!(f, "ALL FUNCTIONS IN KEYSPACE {}", Ident(k))
            }
            Resource::Function { name, arg_types } => {
                write!(f, "FUNCTION {}(", FnName(name))?;
                join(f, arg_types, ", ")?;
                f.write_char(')')
            }
            Resource::AllMbeans => f.write_str("ALL MBEANS"),
            Resource::Mbean(m) => {
                f.write_str("MBEAN ")?;
                write_string_literal(f, m)
            }
        }
    }
}

impl Display for PermissionSpec {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            PermissionSpec::All => f.write_str("ALL PERMISSIONS"),
            PermissionSpec::One(p) => f.write_str(&p.to_ascii_uppercase()),
        }
    }
}

fn if_not_exists(b: bool) -> &'static str {
    if b { "IF NOT EXISTS " } else { "" }
}

fn if_exists(b: bool) -> &'static str {
    if b { "IF EXISTS " } else { "" }
}

/// A legacy user name: case is kept even when bare, so anything but a plain word is a string.
struct UserName<'a>(&'a str);

impl Display for UserName<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let b = self.0.as_bytes();
        let bare = !b.is_empty()
            && b[0].is_ascii_alphabetic()
            && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'_')
            && !is_reserved(self.0)
            && scan_word_kind(self.0) == Tok::Ident;
        if bare {
            f.write_str(self.0)
        } else {
            write_string_literal(f, self.0)
        }
    }
}

fn write_user_opts(
    f: &mut Formatter<'_>,
    password: &Option<String>,
    superuser: Option<bool>,
) -> fmt::Result {
    if let Some(p) = password {
        f.write_str(" WITH PASSWORD ")?;
        write_string_literal(f, p)?;
    }
    match superuser {
        Some(true) => f.write_str(" SUPERUSER"),
        Some(false) => f.write_str(" NOSUPERUSER"),
        None => Ok(()),
    }
}

impl Display for Statement {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Statement::Select(s) => write!(f, "{s}"),
            Statement::Insert(s) => write!(f, "{s}"),
            Statement::Update(s) => write!(f, "{s}"),
            Statement::Delete(s) => write!(f, "{s}"),
            Statement::Batch(s) => write!(f, "{s}"),
            Statement::Use(k) => write!(f, "USE {}", Ident(k)),
            Statement::CreateKeyspace(s) => {
                write!(
                    f,
                    "CREATE KEYSPACE {}{}",
                    if_not_exists(s.if_not_exists),
                    Ident(&s.name)
                )?;
                write_with(f, &s.properties)
            }
            Statement::AlterKeyspace {
                name,
                if_exists: ie,
                properties,
            } => {
                write!(f, "ALTER KEYSPACE {}{}", if_exists(*ie), Ident(name))?;
                write_with(f, properties)
            }
            Statement::DropKeyspace {
                name,
                if_exists: ie,
            } => write!(f, "DROP KEYSPACE {}{}", if_exists(*ie), Ident(name)),
            Statement::CreateTable(s) => write!(f, "{s}"),
            Statement::AlterTable(s) => write!(f, "{s}"),
            Statement::DropTable {
                name,
                if_exists: ie,
            } => write!(f, "DROP TABLE {}{name}", if_exists(*ie)),
            Statement::Truncate(q) => write!(f, "TRUNCATE TABLE {q}"),
            Statement::CreateType {
                name,
                if_not_exists: ine,
                fields,
            } => {
                write!(f, "CREATE TYPE {}{name} (", if_not_exists(*ine))?;
                for (i, (n, t)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{} {t}", Ident(n))?;
                }
                f.write_char(')')
            }
            Statement::AlterType {
                name,
                if_exists: ie,
                action,
            } => {
                write!(f, "ALTER TYPE {}{name} ", if_exists(*ie))?;
                match action {
                    AlterTypeAction::Add {
                        field,
                        ty,
                        if_not_exists: ine,
                    } => write!(f, "ADD {}{} {ty}", if_not_exists(*ine), Ident(field)),
                    AlterTypeAction::Rename {
                        renames,
                        if_exists: ie,
                    } => {
                        write!(f, "RENAME {}", if_exists(*ie))?;
                        write_renames(f, renames)
                    }
                    AlterTypeAction::AlterField { field, ty } => {
                        write!(f, "ALTER {} TYPE {ty}", Ident(field))
                    }
                }
            }
            Statement::DropType {
                name,
                if_exists: ie,
            } => write!(f, "DROP TYPE {}{name}", if_exists(*ie)),
            Statement::CreateIndex(s) => write!(f, "{s}"),
            Statement::DropIndex {
                name,
                if_exists: ie,
            } => write!(f, "DROP INDEX {}{name}", if_exists(*ie)),
            Statement::Describe(d) => write!(f, "{d}"),
            Statement::CreateRole {
                name,
                if_not_exists: ine,
                options,
            } => write!(
                f,
                "CREATE ROLE {}{}{options}",
                if_not_exists(*ine),
                RoleName(name)
            ),
            Statement::AlterRole {
                name,
                if_exists: ie,
                options,
            } => write!(
                f,
                "ALTER ROLE {}{}{options}",
                if_exists(*ie),
                RoleName(name)
            ),
            Statement::DropRole {
                name,
                if_exists: ie,
            } => write!(f, "DROP ROLE {}{}", if_exists(*ie), RoleName(name)),
            Statement::CreateUser {
                name,
                if_not_exists: ine,
                password,
                superuser,
            } => {
                write!(f, "CREATE USER {}{}", if_not_exists(*ine), UserName(name))?;
                write_user_opts(f, password, *superuser)
            }
            Statement::AlterUser {
                name,
                if_exists: ie,
                password,
                superuser,
            } => {
                write!(f, "ALTER USER {}{}", if_exists(*ie), UserName(name))?;
                write_user_opts(f, password, *superuser)
            }
            Statement::DropUser {
                name,
                if_exists: ie,
            } => write!(f, "DROP USER {}{}", if_exists(*ie), UserName(name)),
            Statement::ListUsers => f.write_str("LIST USERS"),
            Statement::GrantPermission {
                permission,
                resource,
                role,
            } => write!(f, "GRANT {permission} ON {resource} TO {}", RoleName(role)),
            Statement::RevokePermission {
                permission,
                resource,
                role,
            } => write!(
                f,
                "REVOKE {permission} ON {resource} FROM {}",
                RoleName(role)
            ),
            Statement::GrantRole { role, grantee } => {
                write!(f, "GRANT {} TO {}", RoleName(role), RoleName(grantee))
            }
            Statement::RevokeRole { role, revokee } => {
                write!(f, "REVOKE {} FROM {}", RoleName(role), RoleName(revokee))
            }
            Statement::ListRoles { of, recursive } => {
                f.write_str("LIST ROLES")?;
                if let Some(r) = of {
                    write!(f, " OF {}", RoleName(r))?;
                }
                if !recursive {
                    f.write_str(" NORECURSIVE")?;
                }
                Ok(())
            }
            Statement::ListPermissions {
                permission,
                resource,
                of,
                recursive,
            } => {
                write!(f, "LIST {permission}")?;
                if let Some(r) = resource {
                    write!(f, " ON {r}")?;
                }
                if let Some(r) = of {
                    write!(f, " OF {}", RoleName(r))?;
                }
                if !recursive {
                    f.write_str(" NORECURSIVE")?;
                }
                Ok(())
            }
            // Shoal keeps only the header of these; the text is enough to parse back.
            Statement::CreateFunction {
                name,
                if_not_exists: ine,
                or_replace,
            } => write!(
                f,
                "CREATE {}FUNCTION {}{}",
                if *or_replace { "OR REPLACE " } else { "" },
                if_not_exists(*ine),
                FnName(name)
            ),
            Statement::DropFunction {
                name,
                if_exists: ie,
            } => write!(f, "DROP FUNCTION {}{}", if_exists(*ie), FnName(name)),
            Statement::CreateAggregate {
                name,
                if_not_exists: ine,
                or_replace,
            } => write!(
                f,
                "CREATE {}AGGREGATE {}{}",
                if *or_replace { "OR REPLACE " } else { "" },
                if_not_exists(*ine),
                FnName(name)
            ),
            Statement::DropAggregate {
                name,
                if_exists: ie,
            } => write!(f, "DROP AGGREGATE {}{}", if_exists(*ie), FnName(name)),
            Statement::CreateMaterializedView {
                name,
                if_not_exists: ine,
            } => write!(
                f,
                "CREATE MATERIALIZED VIEW {}{name} AS",
                if_not_exists(*ine)
            ),
            Statement::AlterMaterializedView { name } => {
                write!(f, "ALTER MATERIALIZED VIEW {name} WITH comment = ''")
            }
            Statement::DropMaterializedView {
                name,
                if_exists: ie,
            } => write!(f, "DROP MATERIALIZED VIEW {}{name}", if_exists(*ie)),
            Statement::CreateTrigger { name, table } => {
                write!(f, "CREATE TRIGGER {} ON {table} USING ''", Ident(name))
            }
            Statement::DropTrigger {
                name,
                table,
                if_exists: ie,
            } => write!(
                f,
                "DROP TRIGGER {}{} ON {table}",
                if_exists(*ie),
                Ident(name)
            ),
        }
    }
}
