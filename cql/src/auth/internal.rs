//! The node's own reads and writes of `system_auth` and `system_traces`.
//!
//! Clients may not write system keyspaces (`modify.rs` refuses them). The node writes them
//! through an alias schema: a keyspace named [`KEYSPACE`] whose tables are the system tables
//! under their own ids, so the ordinary INSERT/UPDATE/DELETE path builds the mutations and
//! they land in the very same engine tables.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;

use super::{AuthState, Permission, RoleRecord};
use crate::error::{CqlError, CqlResult};
use crate::executor::{Executor, binds, merge_mutations, modify, select};
use crate::parser::{self, ast::Statement};
use crate::protocol::{QueryParameters, ResultBody, Values};
use crate::schema::{KeyspaceDef, Schema, TableDef};

/// The alias keyspace of the internal writes; never visible to clients.
pub const KEYSPACE: &str = "shoal_internal";

fn alias_schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let mut tables = BTreeMap::new();
        for ks in crate::schema::system::system_keyspaces_shared() {
            if ks.name != "system_auth" && ks.name != "system_traces" {
                continue;
            }
            for (name, t) in &ks.tables {
                let mut t: TableDef = (**t).clone();
                t.keyspace = KEYSPACE.to_string();
                tables.insert(name.clone(), Arc::new(t));
            }
        }
        let ks = KeyspaceDef {
            name: KEYSPACE.to_string(),
            replication: BTreeMap::new(),
            durable_writes: true,
            tables,
            types: BTreeMap::new(),
            is_system: false,
        };
        let mut keyspaces = BTreeMap::new();
        keyspaces.insert(KEYSPACE.to_string(), Arc::new(ks));
        let mut schema = Schema {
            keyspaces,
            version: Default::default(),
            ..Default::default()
        };
        schema.reindex();
        schema
    })
}

/// A CQL string literal.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Applies INSERT/UPDATE/DELETE statements on [`KEYSPACE`] tables as one write.
pub async fn write(ex: &Executor, statements: &[String]) -> CqlResult<()> {
    let schema = alias_schema();
    let values = Values::default();
    let mut mutations = Vec::new();
    for text in statements {
        let parsed = parser::parse(text)?;
        let bound = binds::Bound::new(&[], &parsed.bind_names, &values)?;
        let ctx = modify::WriteContext {
            executor: ex,
            schema,
            keyspace: Some(KEYSPACE),
            timestamp: None,
            batch_timestamp: None,
        };
        mutations.extend(modify::mutations_for(&ctx, &parsed.statement, &bound)?);
    }
    ex.apply_local(merge_mutations(mutations)).await
}

/// Runs a SELECT on the real schema (system tables are readable) and returns every row.
pub fn read(ex: &Executor, text: &str) -> CqlResult<Vec<Vec<Option<Bytes>>>> {
    let parsed = parser::parse(text)?;
    let Statement::Select(s) = &parsed.statement else {
        return Err(CqlError::server("internal read is not a SELECT"));
    };
    let schema = ex.schema();
    let values = Values::default();
    let bound = binds::Bound::new(&[], &parsed.bind_names, &values)?;
    let params = QueryParameters {
        consistency: crate::error::Consistency::One,
        values: Values::default(),
        skip_metadata: false,
        page_size: None,
        paging_state: None,
        serial_consistency: None,
        default_timestamp: None,
        keyspace: None,
        now_in_seconds: None,
    };
    // Auth tables are node-local, so the read never waits on another node.
    let outcome =
        crate::executor::complete_now(select::execute(ex, &schema, None, s, &bound, &params))
            .ok_or_else(|| CqlError::server("internal read of a replicated table"))??;
    match outcome.body {
        ResultBody::Rows(rows) => Ok(rows.rows),
        _ => Ok(Vec::new()),
    }
}

pub fn text(v: &Option<Bytes>) -> Option<String> {
    v.as_ref().map(|b| String::from_utf8_lossy(b).into_owned())
}

pub fn boolean(v: &Option<Bytes>) -> bool {
    v.as_ref()
        .is_some_and(|b| b.first().is_some_and(|x| *x != 0))
}

/// A serialized `set<text>`: [int n] then n × [int len][bytes].
pub fn text_set(v: &Option<Bytes>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let Some(b) = v else { return out };
    let rd = |at: usize| -> Option<usize> {
        Some(i32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?).max(0) as usize)
    };
    let Some(n) = rd(0) else { return out };
    let mut at = 4;
    for _ in 0..n {
        let Some(len) = rd(at) else { break };
        at += 4;
        let Some(s) = b.get(at..at + len) else { break };
        out.insert(String::from_utf8_lossy(s).into_owned());
        at += len;
    }
    out
}

/// A `set<text>` literal.
pub fn set_literal<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let items: Vec<String> = items.into_iter().map(quote).collect();
    format!("{{{}}}", items.join(", "))
}

/// Reads roles and permissions.
pub fn load_state(ex: &Executor) -> CqlResult<AuthState> {
    let mut state = AuthState::default();
    for row in read(
        ex,
        "SELECT role, is_superuser, can_login, salted_hash, member_of FROM system_auth.roles",
    )? {
        let Some(name) = text(&row[0]) else { continue };
        state.roles.insert(
            name,
            RoleRecord {
                is_superuser: boolean(&row[1]),
                can_login: boolean(&row[2]),
                salted_hash: text(&row[3]),
                member_of: text_set(&row[4]),
            },
        );
    }
    for row in read(
        ex,
        "SELECT role, resource, permissions FROM system_auth.role_permissions",
    )? {
        let (Some(role), Some(resource)) = (text(&row[0]), text(&row[1])) else {
            continue;
        };
        let perms: BTreeSet<Permission> = text_set(&row[2])
            .iter()
            .filter_map(|p| Permission::parse(p))
            .collect();
        if !perms.is_empty() {
            state.permissions.insert((role, resource), perms);
        }
    }
    Ok(state)
}
