//! Schema statements: keyspaces, tables, user types, TRUNCATE; with Cassandra's validation
//! and error texts. Every change is persisted before it is acknowledged.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use shoal_engine::TableOptions;
use uuid::Uuid;

use super::binds::Bound;
use super::{Executor, engine_error, now_micros};
use crate::error::{CqlError, CqlResult};
use crate::parser::ast::*;
use crate::protocol::SchemaChange;
use crate::schema::{
    ColumnDef, ColumnKind, KeyspaceDef, Schema, TableDef, TableParams, TableSource,
};
use crate::types::{CqlType, UdtDef};

const NAME_LENGTH: usize = 48;

fn change(change: &'static str, target: &'static str, keyspace: &str, name: &str) -> SchemaChange {
    SchemaChange {
        change,
        target,
        keyspace: keyspace.to_string(),
        name: name.to_string(),
        arguments: Vec::new(),
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= NAME_LENGTH
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn session_keyspace<'a>(name: &'a QualifiedName, keyspace: Option<&'a str>) -> CqlResult<&'a str> {
    name.keyspace.as_deref().or(keyspace).ok_or_else(|| {
        CqlError::invalid("No keyspace has been specified. USE a keyspace, or explicitly specify keyspace.tablename")
    })
}

fn not_modifiable(ks: &str) -> CqlError {
    CqlError::Unauthorized(format!("{ks} keyspace is not user-modifiable."))
}

/// Executes a schema statement. `None` means nothing changed (IF [NOT] EXISTS no-op), which
/// Cassandra answers with a Void result.
pub fn execute(
    ex: &Executor,
    keyspace: Option<&str>,
    statement: &Statement,
    _binds: &Bound,
) -> CqlResult<Option<SchemaChange>> {
    let _guard = ex.ddl_guard();
    let current = ex.schema();
    let mut schema: Schema = (*current).clone();
    let result = match statement {
        Statement::CreateKeyspace(s) => create_keyspace(ex, &mut schema, s)?,
        Statement::AlterKeyspace {
            name,
            if_exists,
            properties,
        } => alter_keyspace(ex, &mut schema, name, *if_exists, properties)?,
        Statement::DropKeyspace { name, if_exists } => {
            drop_keyspace(ex, &mut schema, name, *if_exists)?
        }
        Statement::CreateTable(s) => create_table(ex, &mut schema, keyspace, s)?,
        Statement::AlterTable(s) => alter_table(&mut schema, keyspace, s)?,
        Statement::DropTable { name, if_exists } => {
            drop_table(ex, &mut schema, keyspace, name, *if_exists)?
        }
        Statement::Truncate(name) => {
            truncate(ex, &schema, keyspace, name)?;
            return Ok(None);
        }
        Statement::CreateType {
            name,
            if_not_exists,
            fields,
        } => create_type(&mut schema, keyspace, name, *if_not_exists, fields)?,
        Statement::AlterType {
            name,
            if_exists,
            action,
        } => alter_type(&mut schema, keyspace, name, *if_exists, action)?,
        Statement::DropType { name, if_exists } => {
            drop_type(&mut schema, keyspace, name, *if_exists)?
        }
        // These commit the schema themselves: an index is built after it is live.
        Statement::CreateIndex(s) => {
            return super::index::create_index(ex, schema, keyspace, s);
        }
        Statement::DropIndex { name, if_exists } => {
            return super::index::drop_index(ex, schema, keyspace, name, *if_exists);
        }
        Statement::CreateFunction { .. } | Statement::CreateAggregate { .. } => {
            return Err(CqlError::invalid(
                "User-defined functions are disabled in cassandra.yaml - set user_defined_functions_enabled=true to enable",
            ));
        }
        Statement::DropFunction { name, if_exists }
        | Statement::DropAggregate { name, if_exists } => {
            if *if_exists {
                return Ok(None);
            }
            return Err(CqlError::invalid(format!(
                "Unconfigured function {}",
                name.name
            )));
        }
        Statement::CreateMaterializedView { .. } | Statement::AlterMaterializedView { .. } => {
            return Err(CqlError::invalid(
                "Materialized views are disabled. Enable in cassandra.yaml to use.",
            ));
        }
        Statement::DropMaterializedView { name, if_exists } => {
            if *if_exists {
                return Ok(None);
            }
            return Err(CqlError::invalid(format!(
                "Materialized view '{}' doesn't exist",
                name.name
            )));
        }
        Statement::CreateTrigger { .. } | Statement::DropTrigger { .. } => {
            return Err(CqlError::invalid("Triggers are not supported by this node"));
        }
        // Role and permission statements run in `crate::auth::statements`, not as DDL.
        _ => {
            return Err(CqlError::server(
                "role and permission statements do not go through the schema",
            ));
        }
    };
    if let Some(c) = &result {
        ex.commit_schema(schema, c)?;
    }
    Ok(result)
}

fn literal_text(l: &Literal) -> String {
    match l {
        Literal::String(s)
        | Literal::Integer(s)
        | Literal::Float(s)
        | Literal::Uuid(s)
        | Literal::Duration(s) => s.clone(),
        Literal::Blob(s) => format!("0x{s}"),
        Literal::Boolean(b) => b.to_string(),
        Literal::NaN => "NaN".into(),
        Literal::Infinity => "Infinity".into(),
        Literal::NegInfinity => "-Infinity".into(),
        Literal::Null => "null".into(),
    }
}

fn prop_text(p: &Property) -> CqlResult<String> {
    match &p.value {
        PropertyValue::Constant(l) => Ok(literal_text(l)),
        PropertyValue::Identifier(s) => Ok(s.clone()),
        PropertyValue::Map(_) => Err(CqlError::syntax(format!(
            "Invalid value for property '{}'. It should be a string",
            p.name
        ))),
    }
}

fn prop_map(p: &Property) -> CqlResult<BTreeMap<String, String>> {
    match &p.value {
        PropertyValue::Map(entries) => Ok(entries
            .iter()
            .map(|(k, v)| (literal_text(k), literal_text(v)))
            .collect()),
        _ => Err(CqlError::syntax(format!(
            "Invalid value for property '{}'. It should be a map.",
            p.name
        ))),
    }
}

fn check_duplicates(props: &[Property]) -> CqlResult<()> {
    let mut seen = std::collections::HashSet::new();
    for p in props {
        if !seen.insert(p.name.as_str()) {
            return Err(CqlError::syntax(format!(
                "Multiple definitions for property '{}'",
                p.name
            )));
        }
    }
    Ok(())
}

fn replication(
    ex: &Executor,
    ks: &str,
    mut map: BTreeMap<String, String>,
    existing: Option<&BTreeMap<String, String>>,
) -> CqlResult<BTreeMap<String, String>> {
    let class = map
        .remove("class")
        .ok_or_else(|| CqlError::Config("Missing replication strategy class".into()))?;
    let short = class.rsplit('.').next().unwrap_or(&class).to_string();
    let full = match short.as_str() {
        "SimpleStrategy" | "NetworkTopologyStrategy" => {
            format!("org.apache.cassandra.locator.{short}")
        }
        "LocalStrategy" | "EverywhereStrategy" => {
            return Err(CqlError::Config(format!(
                "Unable to use given strategy class: {short} is reserved for internal use."
            )));
        }
        _ => {
            return Err(CqlError::Config(format!(
                "Unable to find replication strategy class '{class}'"
            )));
        }
    };
    let parse_rf = |v: &str| -> CqlResult<u32> {
        let n: i64 = v.parse().map_err(|_| {
            CqlError::Config(format!("Replication factor must be numeric; found {v}"))
        })?;
        if n < 0 {
            return Err(CqlError::Config(format!(
                "Replication factor must be non-negative; found {n}"
            )));
        }
        Ok(n as u32)
    };
    let mut out = BTreeMap::new();
    out.insert("class".to_string(), full.clone());
    if short == "SimpleStrategy" {
        let rf = map.remove("replication_factor").ok_or_else(|| {
            CqlError::Config("SimpleStrategy requires a replication_factor strategy option.".into())
        })?;
        out.insert("replication_factor".into(), parse_rf(&rf)?.to_string());
        if let Some(k) = map.keys().next() {
            return Err(CqlError::Config(format!(
                "Unrecognized strategy option {{{k}}} passed to SimpleStrategy for keyspace {ks}"
            )));
        }
    } else {
        let mut known: BTreeSet<String> = BTreeSet::new();
        known.insert(ex.node().dc.clone());
        if let Some(view) = ex.cluster_view() {
            known.extend(view.peers().into_iter().filter_map(|p| p.data_center));
        }
        let mut rfs = BTreeMap::new();
        for (k, v) in map {
            let rf = parse_rf(&v)?;
            rfs.insert(k, rf);
        }
        out.extend(nts_options(ks, rfs, existing, &known)?);
    }
    Ok(out)
}

/// NetworkTopologyStrategy's options as Cassandra 4 stores them (`prepareOptions` and
/// `validateExpectedOptions`): `replication_factor` expands to every known datacenter
/// without an explicit factor (on ALTER the datacenters already listed keep theirs), an
/// ALTER from SimpleStrategy with no option keeps the old factor, and a datacenter nobody
/// in the cluster belongs to is rejected. `known_dcs` is this node's datacenter and those of
/// its peers.
pub(crate) fn nts_options(
    ks: &str,
    mut given: BTreeMap<String, u32>,
    existing: Option<&BTreeMap<String, String>>,
    known_dcs: &BTreeSet<String>,
) -> CqlResult<BTreeMap<String, String>> {
    let mut default = given.remove("replication_factor");
    if default.is_none() && given.is_empty() {
        // ALTER from SimpleStrategy to NetworkTopologyStrategy without options.
        default = existing
            .and_then(|p| p.get("replication_factor"))
            .and_then(|v| v.parse().ok());
    }
    let mut out: BTreeMap<String, String> = given
        .into_iter()
        .map(|(dc, rf)| (dc, rf.to_string()))
        .collect();
    if let Some(rf) = default {
        if let Some(prev) = existing {
            for (k, v) in prev {
                if k != "class" && k != "replication_factor" {
                    out.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
        }
        for dc in known_dcs {
            out.entry(dc.clone()).or_insert_with(|| rf.to_string());
        }
    }
    if let Some(dc) = out.keys().find(|dc| !known_dcs.contains(*dc)) {
        return Err(CqlError::Config(format!(
            "Unrecognized strategy option {{{dc}}} passed to NetworkTopologyStrategy for keyspace {ks}"
        )));
    }
    Ok(out)
}

fn keyspace_props(
    ex: &Executor,
    name: &str,
    props: &[Property],
    existing: Option<&KeyspaceDef>,
) -> CqlResult<(BTreeMap<String, String>, bool)> {
    check_duplicates(props)?;
    let mut repl = existing.map(|k| k.replication.clone());
    let mut durable = existing.map(|k| k.durable_writes).unwrap_or(true);
    for p in props {
        match p.name.as_str() {
            "replication" => {
                repl = Some(replication(
                    ex,
                    name,
                    prop_map(p)?,
                    existing.map(|k| &k.replication),
                )?)
            }
            "durable_writes" => {
                durable = match prop_text(p)?.to_ascii_lowercase().as_str() {
                    "true" => true,
                    "false" => false,
                    other => {
                        return Err(CqlError::syntax(format!("Invalid boolean value {other}")));
                    }
                }
            }
            other => return Err(CqlError::syntax(format!("Unknown property '{other}'"))),
        }
    }
    let repl =
        repl.ok_or_else(|| CqlError::Config("Missing mandatory option 'replication'".into()))?;
    Ok((repl, durable))
}

fn create_keyspace(
    ex: &Executor,
    schema: &mut Schema,
    s: &CreateKeyspaceStatement,
) -> CqlResult<Option<SchemaChange>> {
    if !valid_name(&s.name) {
        return Err(CqlError::invalid(format!(
            "Keyspace name must not be empty, more than {NAME_LENGTH} characters long, or contain non-alphanumeric-underscore characters (got \"{}\")",
            s.name
        )));
    }
    let (replication, durable_writes) = keyspace_props(ex, &s.name, &s.properties, None)?;
    if schema.keyspaces.contains_key(&s.name) {
        if s.if_not_exists {
            return Ok(None);
        }
        return Err(CqlError::AlreadyExists {
            message: format!("Keyspace '{}' already exists", s.name),
            keyspace: s.name.clone(),
            table: String::new(),
        });
    }
    schema.keyspaces.insert(
        s.name.clone(),
        Arc::new(KeyspaceDef {
            name: s.name.clone(),
            replication,
            durable_writes,
            tables: BTreeMap::new(),
            types: BTreeMap::new(),
            is_system: false,
        }),
    );
    Ok(Some(change("CREATED", "KEYSPACE", &s.name, "")))
}

fn alter_keyspace(
    ex: &Executor,
    schema: &mut Schema,
    name: &str,
    if_exists: bool,
    props: &[Property],
) -> CqlResult<Option<SchemaChange>> {
    let Some(ks) = schema.keyspaces.get(name).cloned() else {
        if if_exists {
            return Ok(None);
        }
        return Err(CqlError::invalid(format!(
            "Keyspace '{name}' doesn't exist"
        )));
    };
    if ks.is_system {
        return Err(not_modifiable(name));
    }
    let (replication, durable_writes) = keyspace_props(ex, name, props, Some(&ks))?;
    let mut new = (*ks).clone();
    new.replication = replication;
    new.durable_writes = durable_writes;
    schema.keyspaces.insert(name.to_string(), Arc::new(new));
    Ok(Some(change("UPDATED", "KEYSPACE", name, "")))
}

fn drop_keyspace(
    ex: &Executor,
    schema: &mut Schema,
    name: &str,
    if_exists: bool,
) -> CqlResult<Option<SchemaChange>> {
    let Some(ks) = schema.keyspaces.get(name).cloned() else {
        if if_exists {
            return Ok(None);
        }
        return Err(CqlError::invalid(format!(
            "Keyspace '{name}' doesn't exist"
        )));
    };
    if ks.is_system {
        return Err(not_modifiable(name));
    }
    schema.keyspaces.remove(name);
    // The schema no longer names these tables: on restart their log entries are skipped.
    for t in ks.tables.values() {
        ex.engine()
            .drop_table(t.engine_id())
            .map_err(engine_error)?;
    }
    Ok(Some(change("DROPPED", "KEYSPACE", name, "")))
}

/// Resolves a type expression. `top` is true for a column's own type, where collections
/// and UDTs are non-frozen unless wrapped in frozen<>.
pub fn resolve_type(ks: &KeyspaceDef, t: &TypeExpr, top: bool) -> CqlResult<CqlType> {
    resolve(ks, t, top, false)
}

fn resolve(ks: &KeyspaceDef, t: &TypeExpr, top: bool, frozen: bool) -> CqlResult<CqlType> {
    let inner = |x: &TypeExpr| resolve(ks, x, false, frozen);
    Ok(match t {
        TypeExpr::Native(n) => CqlType::from_native_name(n)
            .ok_or_else(|| CqlError::syntax(format!("Unknown type {n}")))?,
        TypeExpr::Frozen(x) => {
            if matches!(**x, TypeExpr::Native(_)) {
                return Err(CqlError::invalid(format!(
                    "frozen<> is only allowed on collections, tuples, and user-defined types (got {})",
                    type_text(x)
                )));
            }
            resolve(ks, x, false, true)?
        }
        TypeExpr::List(e) | TypeExpr::Set(e) | TypeExpr::Map(e, _) => {
            if !top && !frozen {
                return Err(CqlError::invalid(format!(
                    "Non-frozen collections are not allowed inside collections: {}",
                    type_text(t)
                )));
            }
            let e_ty = resolve(ks, e, false, frozen)?;
            if e_ty == CqlType::Counter {
                return Err(CqlError::invalid(
                    "Counters are not allowed inside collections: ".to_string() + &type_text(t),
                ));
            }
            match t {
                TypeExpr::List(_) => CqlType::List {
                    elem: Box::new(e_ty),
                    frozen,
                },
                TypeExpr::Set(_) => CqlType::Set {
                    elem: Box::new(e_ty),
                    frozen,
                },
                TypeExpr::Map(_, v) => CqlType::Map {
                    key: Box::new(e_ty),
                    value: Box::new(resolve(ks, v, false, frozen)?),
                    frozen,
                },
                _ => unreachable!(),
            }
        }
        TypeExpr::Tuple(items) => CqlType::Tuple(
            items
                .iter()
                .map(|x| resolve(ks, x, false, true))
                .collect::<CqlResult<_>>()?,
        ),
        TypeExpr::Vector(e, n) => CqlType::Vector {
            elem: Box::new(inner(e)?),
            dimension: *n,
        },
        TypeExpr::UserDefined(q) => {
            if let Some(other) = &q.keyspace
                && other != &ks.name
            {
                return Err(CqlError::invalid(format!(
                    "Statement on keyspace {} cannot refer to a user type in keyspace {other}; user types can only be used in the keyspace they are defined in",
                    ks.name
                )));
            }
            let def = ks
                .types
                .get(&q.name)
                .ok_or_else(|| CqlError::invalid(format!("Unknown type {}.{}", ks.name, q.name)))?;
            if !top && !frozen {
                return Err(CqlError::invalid(
                    "A user type cannot contain non-frozen UDTs",
                ));
            }
            CqlType::Udt {
                def: def.clone(),
                frozen,
            }
        }
        TypeExpr::Custom(c) => CqlType::Custom(c.clone()),
    })
}

fn type_text(t: &TypeExpr) -> String {
    match t {
        TypeExpr::Native(n) => n.clone(),
        TypeExpr::List(e) => format!("list<{}>", type_text(e)),
        TypeExpr::Set(e) => format!("set<{}>", type_text(e)),
        TypeExpr::Map(k, v) => format!("map<{}, {}>", type_text(k), type_text(v)),
        TypeExpr::Tuple(ts) => format!(
            "tuple<{}>",
            ts.iter().map(type_text).collect::<Vec<_>>().join(", ")
        ),
        TypeExpr::Frozen(e) => format!("frozen<{}>", type_text(e)),
        TypeExpr::Vector(e, n) => format!("vector<{}, {n}>", type_text(e)),
        TypeExpr::UserDefined(q) => q.name.clone(),
        TypeExpr::Custom(c) => format!("'{c}'"),
    }
}

fn full_compaction_class(c: &str) -> String {
    if c.contains('.') {
        c.to_string()
    } else {
        format!("org.apache.cassandra.db.compaction.{c}")
    }
}

fn full_compressor_class(c: &str) -> String {
    if c.contains('.') {
        c.to_string()
    } else {
        format!("org.apache.cassandra.io.compress.{c}")
    }
}

fn parse_num<T: std::str::FromStr>(p: &Property) -> CqlResult<T> {
    let text = prop_text(p)?;
    text.parse::<T>()
        .map_err(|_| CqlError::syntax(format!("Invalid value for property '{}': {text}", p.name)))
}

/// Applies `WITH` properties to table params, with Cassandra's validation.
pub fn apply_table_props(params: &mut TableParams, props: &[Property]) -> CqlResult<()> {
    check_duplicates(props)?;
    for p in props {
        match p.name.as_str() {
            "comment" => params.comment = prop_text(p)?,
            "gc_grace_seconds" => {
                let v: i64 = parse_num(p)?;
                if v < 0 {
                    return Err(CqlError::Config(format!(
                        "gc_grace_seconds must be non-negative, but was {v}"
                    )));
                }
                params.gc_grace_seconds = v.min(i32::MAX as i64) as i32;
            }
            "default_time_to_live" => {
                let v: i64 = parse_num(p)?;
                if v < 0 {
                    return Err(CqlError::Config(format!(
                        "default_time_to_live must be greater than or equal to 0 (got {v})"
                    )));
                }
                if v > super::modify::MAX_TTL {
                    return Err(CqlError::Config(format!(
                        "default_time_to_live must be less than or equal to {} (got {v})",
                        super::modify::MAX_TTL
                    )));
                }
                params.default_time_to_live = v as i32;
            }
            "bloom_filter_fp_chance" => {
                let v: f64 = parse_num(p)?;
                if !(v > 0.0 && v <= 1.0) {
                    return Err(CqlError::Config(format!(
                        "bloom_filter_fp_chance must be larger than 0.0 and less than or equal to 1.0 (got {v})"
                    )));
                }
                params.bloom_filter_fp_chance = v;
            }
            "crc_check_chance" => {
                let v: f64 = parse_num(p)?;
                if !(0.0..=1.0).contains(&v) {
                    return Err(CqlError::Config(format!(
                        "crc_check_chance must be between 0.0 and 1.0 (got {v})"
                    )));
                }
                params.crc_check_chance = v;
            }
            "memtable_flush_period_in_ms" => params.memtable_flush_period_in_ms = parse_num(p)?,
            "min_index_interval" => params.min_index_interval = parse_num(p)?,
            "max_index_interval" => params.max_index_interval = parse_num(p)?,
            "speculative_retry" => params.speculative_retry = prop_text(p)?,
            "additional_write_policy" => params.additional_write_policy = prop_text(p)?,
            "read_repair" => {
                let v = prop_text(p)?.to_ascii_uppercase();
                if v != "BLOCKING" && v != "NONE" {
                    return Err(CqlError::Config(format!(
                        "Invalid value for read_repair: {v}"
                    )));
                }
                params.read_repair = v;
            }
            "cdc" => params.cdc = prop_text(p)?.eq_ignore_ascii_case("true"),
            "caching" => {
                let m = prop_map(p)?;
                for k in m.keys() {
                    if k != "keys" && k != "rows_per_partition" {
                        return Err(CqlError::Config(format!(
                            "Invalid caching sub-options {{{k}}}: only \"keys\" and \"rows_per_partition\" are allowed"
                        )));
                    }
                }
                let mut c = BTreeMap::new();
                c.insert(
                    "keys".to_string(),
                    m.get("keys").cloned().unwrap_or_else(|| "ALL".into()),
                );
                c.insert(
                    "rows_per_partition".to_string(),
                    m.get("rows_per_partition")
                        .cloned()
                        .unwrap_or_else(|| "NONE".into()),
                );
                params.caching = c;
            }
            "compaction" => {
                let mut m = prop_map(p)?;
                let class = m.remove("class").ok_or_else(|| {
                    CqlError::Config(
                        "Missing sub-option 'class' for the 'compaction' option.".into(),
                    )
                })?;
                let full = full_compaction_class(&class);
                let short = full.rsplit('.').next().unwrap_or_default();
                if !matches!(
                    short,
                    "SizeTieredCompactionStrategy"
                        | "LeveledCompactionStrategy"
                        | "TimeWindowCompactionStrategy"
                        | "UnifiedCompactionStrategy"
                ) {
                    return Err(CqlError::Config(format!(
                        "Unable to find compaction strategy class '{class}'"
                    )));
                }
                let mut out = BTreeMap::new();
                out.insert("class".to_string(), full);
                out.insert("max_threshold".to_string(), "32".to_string());
                out.insert("min_threshold".to_string(), "4".to_string());
                out.extend(m);
                params.compaction = out;
            }
            "compression" => {
                let mut m = prop_map(p)?;
                if m.get("enabled")
                    .map(|v| v.eq_ignore_ascii_case("false"))
                    .unwrap_or(false)
                {
                    params.compression = [("enabled".to_string(), "false".to_string())]
                        .into_iter()
                        .collect();
                    continue;
                }
                let class = m
                    .remove("class")
                    .or_else(|| m.remove("sstable_compression"))
                    .unwrap_or_else(|| "LZ4Compressor".into());
                let mut out = BTreeMap::new();
                out.insert("class".to_string(), full_compressor_class(&class));
                out.insert(
                    "chunk_length_in_kb".to_string(),
                    m.remove("chunk_length_in_kb")
                        .unwrap_or_else(|| "16".into()),
                );
                m.remove("enabled");
                out.extend(m);
                params.compression = out;
            }
            "extensions" => {
                params.extensions = prop_map(p)?
                    .into_iter()
                    .map(|(k, v)| (k, v.into_bytes()))
                    .collect();
            }
            "id" => {}
            "dclocal_read_repair_chance" | "read_repair_chance" => {
                return Err(CqlError::syntax(format!(
                    "{} table option has been removed in 4.0",
                    p.name
                )));
            }
            other => return Err(CqlError::syntax(format!("Unknown property '{other}'"))),
        }
    }
    Ok(())
}

pub fn engine_options(t: &TableDef) -> TableOptions {
    TableOptions {
        gc_grace_seconds: t.params.gc_grace_seconds.max(0) as u32,
        default_time_to_live: t.params.default_time_to_live.max(0) as u32,
        compaction: t
            .params
            .compaction
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

fn create_table(
    ex: &Executor,
    schema: &mut Schema,
    keyspace: Option<&str>,
    s: &CreateTableStatement,
) -> CqlResult<Option<SchemaChange>> {
    let ks_name = session_keyspace(&s.name, keyspace)?;
    let ks = schema
        .keyspaces
        .get(ks_name)
        .cloned()
        .ok_or_else(|| CqlError::invalid(format!("Keyspace '{ks_name}' doesn't exist")))?;
    if ks.is_system {
        return Err(not_modifiable(ks_name));
    }
    let name = &s.name.name;
    if !valid_name(name) {
        return Err(CqlError::invalid(format!(
            "Table name must not be empty, more than {NAME_LENGTH} characters long, or contain non-alphanumeric-underscore characters (got \"{name}\")"
        )));
    }
    if s.compact_storage {
        return Err(CqlError::invalid(
            "COMPACT STORAGE tables are not allowed starting with version 4.0",
        ));
    }
    // Cassandra validates the definition before checking existence.
    let table = build_table(&ks, s)?;
    if ks.tables.contains_key(name) {
        if s.if_not_exists {
            return Ok(None);
        }
        return Err(CqlError::AlreadyExists {
            message: format!("Table '{ks_name}.{name}' already exists"),
            keyspace: ks_name.to_string(),
            table: name.clone(),
        });
    }
    ex.engine()
        .create_table(table.engine_id(), engine_options(&table))
        .map_err(engine_error)?;
    let mut new_ks = (*ks).clone();
    new_ks.tables.insert(name.clone(), Arc::new(table));
    schema
        .keyspaces
        .insert(ks_name.to_string(), Arc::new(new_ks));
    Ok(Some(change("CREATED", "TABLE", ks_name, name)))
}

fn build_table(ks: &KeyspaceDef, s: &CreateTableStatement) -> CqlResult<TableDef> {
    let name = &s.name.name;
    // Cassandra names the table as the statement wrote it.
    let written = match &s.name.keyspace {
        Some(k) => format!("{k}.{name}"),
        None => name.clone(),
    };
    let mut defs: Vec<(&ColumnDefinition, CqlType)> = Vec::new();
    for c in &s.columns {
        if defs.iter().any(|(d, _)| d.name == c.name) {
            return Err(CqlError::invalid(format!(
                "Duplicate column '{}' declaration for table {}.{name}",
                c.name, ks.name
            )));
        }
        defs.push((c, resolve_type(ks, &c.ty, true)?));
    }
    let inline: Vec<&str> = s
        .columns
        .iter()
        .filter(|c| c.primary_key)
        .map(|c| c.name.as_str())
        .collect();
    let (pk, ck): (Vec<String>, Vec<String>) = match (&s.primary_key, inline.len()) {
        (Some(_), n) if n > 0 => {
            return Err(CqlError::invalid(format!(
                "Multiple PRIMARY KEY specified for table '{written}' (exactly one required)"
            )));
        }
        (Some((p, c)), _) => (p.clone(), c.clone()),
        (None, 1) => (vec![inline[0].to_string()], Vec::new()),
        (None, 0) => {
            return Err(CqlError::invalid(format!(
                "No PRIMARY KEY specifed for table '{written}' (exactly one required)"
            )));
        }
        (None, _) => {
            return Err(CqlError::invalid(format!(
                "Multiple PRIMARY KEY specified for table '{written}' (exactly one required)"
            )));
        }
    };
    let mut seen = std::collections::HashSet::new();
    for k in pk.iter().chain(&ck) {
        if !defs.iter().any(|(d, _)| &d.name == k) {
            return Err(CqlError::invalid(format!(
                "Unknown column '{k}' referenced in PRIMARY KEY for table '{name}'"
            )));
        }
        if !seen.insert(k) {
            return Err(CqlError::invalid(format!(
                "Duplicate definition {k} referenced in PRIMARY KEY"
            )));
        }
    }
    // CLUSTERING ORDER must list a prefix of the clustering columns, in order.
    let mut orders = vec![Order::Asc; ck.len()];
    for (i, (c, o)) in s.clustering_order.iter().enumerate() {
        let Some(pos) = ck.iter().position(|x| x == c) else {
            return Err(CqlError::invalid(format!(
                "Only clustering key columns can be defined in CLUSTERING ORDER directive: {c} is not a clustering column"
            )));
        };
        if pos != i {
            return Err(CqlError::invalid(format!(
                "The order of columns in the CLUSTERING ORDER directive must match that of the clustering columns ({} must appear before {c})",
                ck[i]
            )));
        }
        orders[pos] = *o;
    }
    if !s.clustering_order.is_empty() && s.clustering_order.len() < ck.len() {
        return Err(CqlError::invalid(format!(
            "Missing CLUSTERING ORDER for column {}",
            ck[s.clustering_order.len()]
        )));
    }
    let mut columns = Vec::new();
    let mut counters = 0;
    let mut non_counters = 0;
    for (id, (d, ty)) in defs.into_iter().enumerate() {
        let (kind, position, order) = if let Some(p) = pk.iter().position(|k| k == &d.name) {
            (ColumnKind::PartitionKey, p as i32, Order::Asc)
        } else if let Some(p) = ck.iter().position(|k| k == &d.name) {
            (ColumnKind::Clustering, p as i32, orders[p])
        } else if d.is_static {
            (ColumnKind::Static, -1, Order::Asc)
        } else {
            (ColumnKind::Regular, -1, Order::Asc)
        };
        if d.is_static && kind != ColumnKind::Static {
            return Err(CqlError::invalid(format!(
                "Static column {} cannot be part of the PRIMARY KEY",
                d.name
            )));
        }
        if matches!(kind, ColumnKind::PartitionKey | ColumnKind::Clustering) {
            if ty == CqlType::Counter {
                return Err(CqlError::invalid(format!(
                    "counter type is not supported for PRIMARY KEY column '{}'",
                    d.name
                )));
            }
            if ty == CqlType::Duration || contains_duration(&ty) {
                return Err(CqlError::invalid(format!(
                    "duration type is not supported for PRIMARY KEY column '{}'",
                    d.name
                )));
            }
            if ty.is_multicell() {
                return Err(CqlError::invalid(format!(
                    "Invalid non-frozen collection type {} for PRIMARY KEY column '{}'",
                    ty.cql_name(),
                    d.name
                )));
            }
        } else if ty == CqlType::Counter {
            counters += 1;
        } else {
            non_counters += 1;
        }
        columns.push(ColumnDef {
            name: d.name.clone(),
            ty,
            kind,
            position,
            order,
            id: id as u32,
        });
    }
    if counters > 0 && non_counters > 0 {
        return Err(CqlError::invalid(
            "Cannot mix counter and non counter columns in the same table",
        ));
    }
    if ck.is_empty() && columns.iter().any(|c| c.kind == ColumnKind::Static) {
        return Err(CqlError::invalid(
            "Static columns are only useful (and thus allowed) if the table has at least one clustering column",
        ));
    }
    let mut params = TableParams::default();
    apply_table_props(&mut params, &s.properties)?;
    let id = s
        .properties
        .iter()
        .find(|p| p.name == "id")
        .map(|p| {
            prop_text(p).and_then(|t| {
                Uuid::parse_str(&t).map_err(|_| CqlError::Config(format!("Invalid table id {t}")))
            })
        })
        .transpose()?
        .unwrap_or_else(Uuid::new_v4);
    if counters > 0 && params.default_time_to_live > 0 {
        return Err(CqlError::invalid(
            "Cannot set default_time_to_live on a table with counters",
        ));
    }
    let next_column_id = columns.len() as u32;
    TableDef::sort_columns(&mut columns);
    Ok(TableDef {
        keyspace: ks.name.clone(),
        name: s.name.name.clone(),
        id,
        partition_key_len: pk.len(),
        clustering_len: ck.len(),
        columns,
        params,
        is_counter: counters > 0,
        indexes: Vec::new(),
        dropped_columns: BTreeMap::new(),
        next_column_id,
        source: TableSource::Stored,
    })
}

fn contains_duration(t: &CqlType) -> bool {
    match t {
        CqlType::Duration => true,
        CqlType::List { elem, .. } | CqlType::Set { elem, .. } | CqlType::Vector { elem, .. } => {
            contains_duration(elem)
        }
        CqlType::Map { key, value, .. } => contains_duration(key) || contains_duration(value),
        CqlType::Tuple(ts) => ts.iter().any(contains_duration),
        CqlType::Udt { def, .. } => def.fields.iter().any(|(_, t)| contains_duration(t)),
        _ => false,
    }
}

fn lookup_table(
    schema: &Schema,
    keyspace: Option<&str>,
    name: &QualifiedName,
) -> CqlResult<(Arc<KeyspaceDef>, Option<Arc<TableDef>>)> {
    let ks_name = session_keyspace(name, keyspace)?;
    let ks = schema
        .keyspaces
        .get(ks_name)
        .cloned()
        .ok_or_else(|| CqlError::invalid(format!("Keyspace '{ks_name}' doesn't exist")))?;
    let t = ks.tables.get(&name.name).cloned();
    Ok((ks, t))
}

fn alter_table(
    schema: &mut Schema,
    keyspace: Option<&str>,
    s: &AlterTableStatement,
) -> CqlResult<Option<SchemaChange>> {
    let (ks, table) = lookup_table(schema, keyspace, &s.name)?;
    let Some(table) = table else {
        if s.if_exists {
            return Ok(None);
        }
        return Err(CqlError::invalid(format!(
            "Table '{}.{}' doesn't exist",
            ks.name, s.name.name
        )));
    };
    if ks.is_system {
        return Err(not_modifiable(&ks.name));
    }
    let mut t = (*table).clone();
    match &s.action {
        AlterTableAction::Add {
            columns,
            if_not_exists,
        } => {
            for c in columns {
                if t.column(&c.name).is_some() {
                    if *if_not_exists {
                        continue;
                    }
                    return Err(CqlError::invalid(format!(
                        "Column with name '{}' already exists",
                        c.name
                    )));
                }
                let ty = resolve_type(&ks, &c.ty, true)?;
                if c.is_static && t.clustering_len == 0 {
                    return Err(CqlError::invalid(
                        "Static columns are only useful (and thus allowed) if the table has at least one clustering column",
                    ));
                }
                if t.is_counter != (ty == CqlType::Counter) {
                    return Err(CqlError::invalid(if t.is_counter {
                        "Cannot add a non counter column ({}) in a counter column family"
                            .replace("{}", &c.name)
                    } else {
                        format!(
                            "Cannot add a counter column ({}) in a non counter column family",
                            c.name
                        )
                    }));
                }
                if let Some((dropped_ty, _)) = t.dropped_columns.get(&c.name)
                    && dropped_ty.is_multicell() != ty.is_multicell()
                {
                    return Err(CqlError::invalid(format!(
                        "Cannot re-add previously dropped column '{}' of type {}, incompatible with previous type {}",
                        c.name,
                        ty.cql_name(),
                        dropped_ty.cql_name()
                    )));
                }
                let id = t.next_column_id;
                t.next_column_id += 1;
                t.columns.push(ColumnDef {
                    name: c.name.clone(),
                    ty,
                    kind: if c.is_static {
                        ColumnKind::Static
                    } else {
                        ColumnKind::Regular
                    },
                    position: -1,
                    order: Order::Asc,
                    id,
                });
            }
            TableDef::sort_columns(&mut t.columns);
        }
        AlterTableAction::Drop {
            columns, if_exists, ..
        } => {
            for name in columns {
                let Some(idx) = t.column_index(name) else {
                    if *if_exists {
                        continue;
                    }
                    return Err(CqlError::invalid(format!(
                        "Column {name} was not found in table {}",
                        t.name
                    )));
                };
                if t.columns[idx].is_primary_key() {
                    return Err(CqlError::invalid(format!(
                        "Cannot drop PRIMARY KEY column {name}"
                    )));
                }
                let col = t.columns.remove(idx);
                t.dropped_columns.insert(col.name, (col.ty, now_micros()));
            }
        }
        AlterTableAction::Rename { renames, if_exists } => {
            for (from, to) in renames {
                let Some(idx) = t.column_index(from) else {
                    if *if_exists {
                        continue;
                    }
                    return Err(CqlError::invalid(format!(
                        "Column {from} was not found in table {}",
                        t.name
                    )));
                };
                if !t.columns[idx].is_primary_key() {
                    return Err(CqlError::invalid(format!(
                        "Cannot rename non PRIMARY KEY column {from}"
                    )));
                }
                if t.column(to).is_some() {
                    return Err(CqlError::invalid(format!(
                        "Cannot rename column {from} to {to} in table '{}'; another column with that name already exists",
                        t.name
                    )));
                }
                t.columns[idx].name = to.clone();
            }
            TableDef::sort_columns(&mut t.columns);
        }
        AlterTableAction::AlterType { .. } => {
            return Err(CqlError::invalid(
                "Altering column types is no longer supported",
            ));
        }
        AlterTableAction::With(props) => {
            if props.iter().any(|p| p.name == "id") {
                return Err(CqlError::Config("Cannot alter table id.".into()));
            }
            apply_table_props(&mut t.params, props)?;
        }
    }
    let mut new_ks = (*ks).clone();
    new_ks.tables.insert(t.name.clone(), Arc::new(t.clone()));
    schema.keyspaces.insert(ks.name.clone(), Arc::new(new_ks));
    Ok(Some(change("UPDATED", "TABLE", &ks.name, &t.name)))
}

fn drop_table(
    ex: &Executor,
    schema: &mut Schema,
    keyspace: Option<&str>,
    name: &QualifiedName,
    if_exists: bool,
) -> CqlResult<Option<SchemaChange>> {
    let (ks, table) = match lookup_table(schema, keyspace, name) {
        Ok(x) => x,
        Err(_) if if_exists => return Ok(None),
        Err(e) => return Err(e),
    };
    let Some(table) = table else {
        if if_exists {
            return Ok(None);
        }
        return Err(CqlError::invalid(format!(
            "Table '{}.{}' doesn't exist",
            ks.name, name.name
        )));
    };
    if ks.is_system {
        return Err(not_modifiable(&ks.name));
    }
    let mut new_ks = (*ks).clone();
    new_ks.tables.remove(&name.name);
    schema.keyspaces.insert(ks.name.clone(), Arc::new(new_ks));
    ex.engine()
        .drop_table(table.engine_id())
        .map_err(engine_error)?;
    Ok(Some(change("DROPPED", "TABLE", &ks.name, &name.name)))
}

fn truncate(
    ex: &Executor,
    schema: &Schema,
    keyspace: Option<&str>,
    name: &QualifiedName,
) -> CqlResult<()> {
    let id = truncate_target(schema, keyspace, name)?;
    ex.truncate_local(id)
}

/// The table a TRUNCATE names, validated (exists, not a system or virtual table).
pub(crate) fn truncate_target(
    schema: &Schema,
    keyspace: Option<&str>,
    name: &QualifiedName,
) -> CqlResult<shoal_engine::TableId> {
    let (ks, table) = lookup_table(schema, keyspace, name)?;
    let table = table.ok_or_else(|| {
        CqlError::invalid(format!("Table '{}.{}' doesn't exist", ks.name, name.name))
    })?;
    if ks.is_system || table.source == TableSource::Virtual {
        return Err(not_modifiable(&ks.name));
    }
    Ok(table.engine_id())
}

fn create_type(
    schema: &mut Schema,
    keyspace: Option<&str>,
    name: &QualifiedName,
    if_not_exists: bool,
    fields: &[(String, TypeExpr)],
) -> CqlResult<Option<SchemaChange>> {
    let ks_name = session_keyspace(name, keyspace)?;
    let ks = schema
        .keyspaces
        .get(ks_name)
        .cloned()
        .ok_or_else(|| CqlError::invalid(format!("Keyspace '{ks_name}' doesn't exist")))?;
    if ks.is_system {
        return Err(not_modifiable(ks_name));
    }
    if ks.types.contains_key(&name.name) {
        if if_not_exists {
            return Ok(None);
        }
        return Err(CqlError::AlreadyExists {
            message: format!("A user type with name '{}' already exists", name.name),
            keyspace: ks_name.to_string(),
            table: name.name.clone(),
        });
    }
    let mut resolved = Vec::new();
    for (f, t) in fields {
        if resolved.iter().any(|(n, _): &(String, CqlType)| n == f) {
            return Err(CqlError::invalid(format!(
                "Duplicate field name {f} in type {}",
                name.name
            )));
        }
        let ty = resolve(&ks, t, false, true)?;
        if ty == CqlType::Counter {
            return Err(CqlError::invalid("A user type cannot contain counters"));
        }
        resolved.push((f.clone(), ty));
    }
    let mut new_ks = (*ks).clone();
    new_ks.types.insert(
        name.name.clone(),
        Arc::new(UdtDef {
            keyspace: ks_name.to_string(),
            name: name.name.clone(),
            fields: resolved,
        }),
    );
    schema
        .keyspaces
        .insert(ks_name.to_string(), Arc::new(new_ks));
    Ok(Some(change("CREATED", "TYPE", ks_name, &name.name)))
}

fn alter_type(
    schema: &mut Schema,
    keyspace: Option<&str>,
    name: &QualifiedName,
    if_exists: bool,
    action: &AlterTypeAction,
) -> CqlResult<Option<SchemaChange>> {
    let ks_name = session_keyspace(name, keyspace)?;
    let ks = schema
        .keyspaces
        .get(ks_name)
        .cloned()
        .ok_or_else(|| CqlError::invalid(format!("Keyspace '{ks_name}' doesn't exist")))?;
    let Some(def) = ks.types.get(&name.name).cloned() else {
        if if_exists {
            return Ok(None);
        }
        return Err(CqlError::invalid(format!(
            "No user type named {ks_name}.{} exists.",
            name.name
        )));
    };
    let mut new_def = (*def).clone();
    match action {
        AlterTypeAction::Add {
            field,
            ty,
            if_not_exists,
        } => {
            if new_def.fields.iter().any(|(f, _)| f == field) {
                if *if_not_exists {
                    return Ok(None);
                }
                return Err(CqlError::invalid(format!(
                    "Cannot add new field {field} to type {ks_name}.{}: a field with name {field} already exists",
                    name.name
                )));
            }
            new_def
                .fields
                .push((field.clone(), resolve(&ks, ty, false, true)?));
        }
        AlterTypeAction::Rename { renames, if_exists } => {
            for (from, to) in renames {
                match new_def.fields.iter().position(|(f, _)| f == from) {
                    Some(i) => new_def.fields[i].0 = to.clone(),
                    None if *if_exists => {}
                    None => {
                        return Err(CqlError::invalid(format!(
                            "Unkown field {from} in user type {ks_name}.{}",
                            name.name
                        )));
                    }
                }
            }
        }
        AlterTypeAction::AlterField { .. } => {
            return Err(CqlError::invalid(
                "Alterting field types is no longer supported",
            ));
        }
    }
    let new_def = Arc::new(new_def);
    let mut new_ks = (*ks).clone();
    new_ks.types.insert(name.name.clone(), new_def.clone());
    // Columns embed their UDT definition: refresh every use.
    for t in new_ks.tables.values_mut() {
        let mut tt = (**t).clone();
        let mut touched = false;
        for c in &mut tt.columns {
            if replace_udt(&mut c.ty, &new_def) {
                touched = true;
            }
        }
        if touched {
            *t = Arc::new(tt);
        }
    }
    schema
        .keyspaces
        .insert(ks_name.to_string(), Arc::new(new_ks));
    Ok(Some(change("UPDATED", "TYPE", ks_name, &name.name)))
}

fn replace_udt(t: &mut CqlType, def: &Arc<UdtDef>) -> bool {
    match t {
        CqlType::Udt { def: d, .. } if d.keyspace == def.keyspace && d.name == def.name => {
            *d = def.clone();
            true
        }
        CqlType::Udt { def: d, .. } => {
            let mut inner = (**d).clone();
            let mut changed = false;
            for (_, ft) in &mut inner.fields {
                changed |= replace_udt(ft, def);
            }
            if changed {
                *d = Arc::new(inner);
            }
            changed
        }
        CqlType::List { elem, .. } | CqlType::Set { elem, .. } | CqlType::Vector { elem, .. } => {
            replace_udt(elem, def)
        }
        CqlType::Map { key, value, .. } => replace_udt(key, def) | replace_udt(value, def),
        CqlType::Tuple(ts) => ts
            .iter_mut()
            .fold(false, |acc, x| replace_udt(x, def) | acc),
        _ => false,
    }
}

fn uses_udt(t: &CqlType, ks: &str, name: &str) -> bool {
    match t {
        CqlType::Udt { def, .. } => {
            (def.keyspace == ks && def.name == name)
                || def.fields.iter().any(|(_, f)| uses_udt(f, ks, name))
        }
        CqlType::List { elem, .. } | CqlType::Set { elem, .. } | CqlType::Vector { elem, .. } => {
            uses_udt(elem, ks, name)
        }
        CqlType::Map { key, value, .. } => uses_udt(key, ks, name) || uses_udt(value, ks, name),
        CqlType::Tuple(ts) => ts.iter().any(|x| uses_udt(x, ks, name)),
        _ => false,
    }
}

fn drop_type(
    schema: &mut Schema,
    keyspace: Option<&str>,
    name: &QualifiedName,
    if_exists: bool,
) -> CqlResult<Option<SchemaChange>> {
    let ks_name = session_keyspace(name, keyspace)?;
    let Some(ks) = schema.keyspaces.get(ks_name).cloned() else {
        if if_exists {
            return Ok(None);
        }
        return Err(CqlError::invalid(format!(
            "Keyspace '{ks_name}' doesn't exist"
        )));
    };
    if !ks.types.contains_key(&name.name) {
        if if_exists {
            return Ok(None);
        }
        return Err(CqlError::invalid(format!(
            "No user type named {ks_name}.{} exists.",
            name.name
        )));
    }
    for t in ks.tables.values() {
        if t.columns
            .iter()
            .any(|c| uses_udt(&c.ty, ks_name, &name.name))
        {
            return Err(CqlError::invalid(format!(
                "Cannot drop user type {ks_name}.{} as it is still used by table {ks_name}.{}",
                name.name, t.name
            )));
        }
    }
    for (other, def) in &ks.types {
        if other != &name.name
            && def
                .fields
                .iter()
                .any(|(_, f)| uses_udt(f, ks_name, &name.name))
        {
            return Err(CqlError::invalid(format!(
                "Cannot drop user type {ks_name}.{} as it is still used by user type {other}",
                name.name
            )));
        }
    }
    let mut new_ks = (*ks).clone();
    new_ks.types.remove(&name.name);
    schema
        .keyspaces
        .insert(ks_name.to_string(), Arc::new(new_ks));
    Ok(Some(change("DROPPED", "TYPE", ks_name, &name.name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dcs(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn given(pairs: &[(&str, u32)]) -> BTreeMap<String, u32> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    fn strs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn replication_factor_expands_to_every_known_datacenter() {
        let known = dcs(&["dc1", "dc2"]);
        let out = nts_options("ks", given(&[("replication_factor", 2)]), None, &known).unwrap();
        assert_eq!(out, strs(&[("dc1", "2"), ("dc2", "2")]));
        // An explicit factor wins over the default.
        let out = nts_options(
            "ks",
            given(&[("replication_factor", 2), ("dc2", 1)]),
            None,
            &known,
        )
        .unwrap();
        assert_eq!(out, strs(&[("dc1", "2"), ("dc2", "1")]));
    }

    #[test]
    fn explicit_datacenters_of_the_cluster_are_accepted_others_rejected() {
        let known = dcs(&["dc1", "dc2"]);
        let out = nts_options("ks", given(&[("dc1", 3), ("dc2", 2)]), None, &known).unwrap();
        assert_eq!(out, strs(&[("dc1", "3"), ("dc2", "2")]));
        let err = nts_options("ks", given(&[("dc3", 1)]), None, &known).unwrap_err();
        assert!(
            err.to_string()
                .contains("Unrecognized strategy option {dc3} passed to NetworkTopologyStrategy for keyspace ks"),
            "{err}"
        );
    }

    #[test]
    fn alter_keeps_listed_datacenters_and_converts_from_simple() {
        let known = dcs(&["dc1", "dc2"]);
        let prev = strs(&[("class", "x"), ("dc1", "3")]);
        let out = nts_options(
            "ks",
            given(&[("replication_factor", 1)]),
            Some(&prev),
            &known,
        )
        .unwrap();
        assert_eq!(out, strs(&[("dc1", "3"), ("dc2", "1")]));
        // Explicit options only: exactly those.
        let out = nts_options("ks", given(&[("dc2", 2)]), Some(&prev), &known).unwrap();
        assert_eq!(out, strs(&[("dc2", "2")]));
        let simple = strs(&[("class", "x"), ("replication_factor", "2")]);
        let out = nts_options("ks", BTreeMap::new(), Some(&simple), &known).unwrap();
        assert_eq!(out, strs(&[("dc1", "2"), ("dc2", "2")]));
    }
}
