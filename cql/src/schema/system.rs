//! Definitions of the built-in system keyspaces and their tables.
//!
//! Every table is written down as Cassandra 4.0 declares it (`db/SystemKeyspace.java`,
//! `schema/SchemaKeyspace.java`, `auth/AuthKeyspace.java`, `tracing/TraceKeyspace.java`,
//! `repair/SystemDistributedKeyspace.java`, `db/virtual/VirtualSchemaKeyspace.java`), because
//! drivers build their metadata from these definitions and cqlsh DESCRIBEs them verbatim.
//! The column lists are kept in Cassandra's CQL-ish notation and parsed here, so they can be
//! compared line by line with the Java sources.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use md5::{Digest, Md5};
use uuid::Uuid;

use super::{ColumnDef, ColumnKind, KeyspaceDef, TableDef, TableParams, TableSource};
use crate::parser::ast::Order;
use crate::types::CqlType;

const LOCAL_STRATEGY: &str = "org.apache.cassandra.locator.LocalStrategy";
const SIMPLE_STRATEGY: &str = "org.apache.cassandra.locator.SimpleStrategy";
const HOUR_MS: i32 = 3_600_000;
const DAY_S: i32 = 86_400;

/// The keyspaces a Cassandra 4.0 node defines by itself, in system_schema order:
/// `system`, `system_auth`, `system_distributed`, `system_schema`, `system_traces`.
pub fn system_keyspaces() -> Vec<KeyspaceDef> {
    vec![
        system(),
        system_auth(),
        system_distributed(),
        system_schema(),
        system_traces(),
    ]
}

/// The virtual keyspaces Cassandra 4.0 shows in DESCRIBE but never in system_schema.
/// Only `system_virtual_schema` is defined: Shoal has no `system_views` tables.
pub fn virtual_keyspaces() -> Vec<KeyspaceDef> {
    vec![system_virtual_schema()]
}

/// True for keyspaces that exist only as virtual keyspaces (no replication, no DDL).
pub fn is_virtual_keyspace(name: &str) -> bool {
    matches!(name, "system_virtual_schema" | "system_views")
}

/// The system keyspaces, built once and shared.
pub fn system_keyspaces_shared() -> &'static [Arc<KeyspaceDef>] {
    static CELL: OnceLock<Vec<Arc<KeyspaceDef>>> = OnceLock::new();
    CELL.get_or_init(|| system_keyspaces().into_iter().map(Arc::new).collect())
}

/// The virtual keyspaces, built once and shared.
pub fn virtual_keyspaces_shared() -> &'static [Arc<KeyspaceDef>] {
    static CELL: OnceLock<Vec<Arc<KeyspaceDef>>> = OnceLock::new();
    CELL.get_or_init(|| virtual_keyspaces().into_iter().map(Arc::new).collect())
}

/// The definition of one system_schema table (used to order the cells of its rows).
pub fn system_schema_table(name: &str) -> Option<Arc<TableDef>> {
    system_keyspaces_shared()
        .iter()
        .find(|k| k.name == "system_schema")?
        .tables
        .get(name)
        .cloned()
}

/// Cassandra's id for a built-in table: `UUID.nameUUIDFromBytes(keyspace bytes ‖ table bytes)`
/// (`TableId.forSystemTable`), so `system.local` has the same id as on a real node.
pub fn system_table_id(keyspace: &str, table: &str) -> Uuid {
    let mut md5 = Md5::new();
    md5.update(keyspace.as_bytes());
    md5.update(table.as_bytes());
    let mut bytes: [u8; 16] = md5.finalize().into();
    // Java's nameUUIDFromBytes stamps version 3 and the IETF variant onto the MD5.
    bytes[6] = (bytes[6] & 0x0f) | 0x30;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    Uuid::from_bytes(bytes)
}

fn system() -> KeyspaceDef {
    use TableSource::Virtual as V;
    let ks = "system";
    let sys = |name: &str, comment: &str, ddl: &str| {
        table(ks, name, ddl, V, |p| {
            p.comment = comment.into();
            p.gc_grace_seconds = 0;
            p.memtable_flush_period_in_ms = HOUR_MS;
        })
    };
    let mut tables = vec![
        sys(
            "IndexInfo",
            "built column indexes",
            "table_name text, index_name text, value blob, PRIMARY KEY ((table_name), index_name)",
        ),
        sys(
            "available_ranges",
            "available keyspace/ranges during bootstrap/replace that are ready to be served",
            "keyspace_name text, ranges set<blob>, PRIMARY KEY ((keyspace_name))",
        ),
        sys(
            "available_ranges_v2",
            "available keyspace/ranges during bootstrap/replace that are ready to be served",
            "keyspace_name text, full_ranges set<blob>, transient_ranges set<blob>, \
             PRIMARY KEY ((keyspace_name))",
        ),
        sys(
            "batches",
            "batches awaiting replay",
            "id timeuuid, mutations list<blob>, version int, PRIMARY KEY ((id))",
        ),
        sys(
            "built_views",
            "built views",
            "keyspace_name text, view_name text, status_replicated boolean, \
             PRIMARY KEY ((keyspace_name), view_name)",
        ),
        sys(
            "compaction_history",
            "week-long compaction history",
            "id uuid, bytes_in bigint, bytes_out bigint, columnfamily_name text, \
             compacted_at timestamp, keyspace_name text, rows_merged map<int, bigint>, \
             PRIMARY KEY ((id))",
        ),
        sys(
            "local",
            "information about the local node",
            "key text, bootstrapped text, broadcast_address inet, broadcast_port int, \
             cluster_name text, cql_version text, data_center text, gossip_generation int, \
             host_id uuid, listen_address inet, listen_port int, native_protocol_version text, \
             partitioner text, rack text, release_version text, rpc_address inet, rpc_port int, \
             schema_version uuid, tokens set<varchar>, truncated_at map<uuid, blob>, \
             PRIMARY KEY ((key))",
        ),
        sys(
            "paxos",
            "in-progress paxos proposals",
            "row_key blob, cf_id UUID, in_progress_ballot timeuuid, most_recent_commit blob, \
             most_recent_commit_at timeuuid, most_recent_commit_version int, proposal blob, \
             proposal_ballot timeuuid, proposal_version int, PRIMARY KEY ((row_key), cf_id)",
        ),
        sys(
            "peer_events",
            "events related to peers",
            "peer inet, hints_dropped map<uuid, int>, PRIMARY KEY ((peer))",
        ),
        sys(
            "peer_events_v2",
            "events related to peers",
            "peer inet, peer_port int, hints_dropped map<uuid, int>, PRIMARY KEY ((peer), peer_port)",
        ),
        sys(
            "peers",
            "information about known peers in the cluster",
            "peer inet, data_center text, host_id uuid, preferred_ip inet, rack text, \
             release_version text, rpc_address inet, schema_version uuid, tokens set<varchar>, \
             PRIMARY KEY ((peer))",
        ),
        sys(
            "peers_v2",
            "information about known peers in the cluster",
            "peer inet, peer_port int, data_center text, host_id uuid, preferred_ip inet, \
             preferred_port int, rack text, release_version text, native_address inet, \
             native_port int, schema_version uuid, tokens set<varchar>, \
             PRIMARY KEY ((peer), peer_port)",
        ),
        sys(
            "prepared_statements",
            "prepared statements",
            "prepared_id blob, logged_keyspace text, query_string text, PRIMARY KEY ((prepared_id))",
        ),
        sys(
            "repairs",
            "repairs",
            "parent_id timeuuid, started_at timestamp, last_update timestamp, \
             repaired_at timestamp, state int, coordinator inet, coordinator_port int, \
             participants set<inet>, participants_wp set<text>, ranges set<blob>, \
             cfids set<uuid>, PRIMARY KEY (parent_id)",
        ),
        sys(
            "size_estimates",
            "per-table primary range size estimates, table is deprecated in favor of table_estimates",
            "keyspace_name text, table_name text, range_start text, range_end text, \
             mean_partition_size bigint, partitions_count bigint, \
             PRIMARY KEY ((keyspace_name), table_name, range_start, range_end)",
        ),
        sys(
            "sstable_activity",
            "historic sstable read rates",
            "keyspace_name text, columnfamily_name text, generation int, rate_120m double, \
             rate_15m double, PRIMARY KEY ((keyspace_name, columnfamily_name, generation))",
        ),
        sys(
            "table_estimates",
            "per-table range size estimates",
            "keyspace_name text, table_name text, range_type text, range_start text, \
             range_end text, mean_partition_size bigint, partitions_count bigint, \
             PRIMARY KEY ((keyspace_name), table_name, range_type, range_start, range_end)",
        ),
        sys(
            "transferred_ranges",
            "record of transferred ranges for streaming operation",
            "operation text, peer inet, keyspace_name text, ranges set<blob>, \
             PRIMARY KEY ((operation, keyspace_name), peer)",
        ),
        sys(
            "transferred_ranges_v2",
            "record of transferred ranges for streaming operation",
            "operation text, peer inet, peer_port int, keyspace_name text, ranges set<blob>, \
             PRIMARY KEY ((operation, keyspace_name), peer, peer_port)",
        ),
        sys(
            "view_builds_in_progress",
            "views builds current progress",
            "keyspace_name text, view_name text, start_token varchar, end_token varchar, \
             last_token varchar, keys_built bigint, \
             PRIMARY KEY ((keyspace_name), view_name, start_token, end_token)",
        ),
    ];
    for t in &mut tables {
        match t.name.as_str() {
            "batches" => {
                t.params
                    .compaction
                    .insert("min_threshold".into(), "2".into());
            }
            "paxos" => {
                // Unlike the other `system` tables, which the node computes on read, the
                // Paxos acceptor state must survive restarts: it is stored.
                t.source = TableSource::Stored;
                t.params.compaction.insert(
                    "class".into(),
                    "org.apache.cassandra.db.compaction.LeveledCompactionStrategy".into(),
                );
            }
            "compaction_history" => t.params.default_time_to_live = 7 * DAY_S,
            // Cassandra records the thrift-era column as dropped "forever" (Long.MAX_VALUE µs).
            "local" => {
                t.dropped_columns
                    .insert("thrift_version".into(), (CqlType::Text, i64::MAX));
            }
            _ => {}
        }
    }
    keyspace(ks, local_replication(), tables)
}

fn system_schema() -> KeyspaceDef {
    let ks = "system_schema";
    let schema = |name: &str, comment: &str, ddl: &str| {
        table(ks, name, ddl, TableSource::Virtual, |p| {
            p.comment = comment.into();
            p.gc_grace_seconds = 7 * DAY_S;
            p.memtable_flush_period_in_ms = HOUR_MS;
        })
    };
    // Table options shared by `tables` and `views`.
    const OPTIONS: &str = "bloom_filter_fp_chance double, caching frozen<map<text, text>>, \
        comment text, compaction frozen<map<text, text>>, compression frozen<map<text, text>>, \
        crc_check_chance double, dclocal_read_repair_chance double, default_time_to_live int, \
        extensions frozen<map<text, blob>>";
    const OPTIONS2: &str = "max_index_interval int, memtable_flush_period_in_ms int, \
        min_index_interval int, read_repair_chance double, speculative_retry text, \
        additional_write_policy text, cdc boolean, read_repair text";
    let tables = vec![
        schema(
            "aggregates",
            "user defined aggregate definitions",
            "keyspace_name text, aggregate_name text, argument_types frozen<list<text>>, \
             final_func text, initcond text, return_type text, state_func text, state_type text, \
             PRIMARY KEY ((keyspace_name), aggregate_name, argument_types)",
        ),
        schema(
            "columns",
            "column definitions",
            "keyspace_name text, table_name text, column_name text, clustering_order text, \
             column_name_bytes blob, kind text, position int, type text, \
             PRIMARY KEY ((keyspace_name), table_name, column_name)",
        ),
        schema(
            "dropped_columns",
            "dropped column registry",
            "keyspace_name text, table_name text, column_name text, dropped_time timestamp, \
             kind text, type text, PRIMARY KEY ((keyspace_name), table_name, column_name)",
        ),
        schema(
            "functions",
            "user defined function definitions",
            "keyspace_name text, function_name text, argument_types frozen<list<text>>, \
             argument_names frozen<list<text>>, body text, language text, return_type text, \
             called_on_null_input boolean, \
             PRIMARY KEY ((keyspace_name), function_name, argument_types)",
        ),
        schema(
            "indexes",
            "secondary index definitions",
            "keyspace_name text, table_name text, index_name text, kind text, \
             options frozen<map<text, text>>, PRIMARY KEY ((keyspace_name), table_name, index_name)",
        ),
        schema(
            "keyspaces",
            "keyspace definitions",
            "keyspace_name text, durable_writes boolean, replication frozen<map<text, text>>, \
             PRIMARY KEY ((keyspace_name))",
        ),
        schema(
            "tables",
            "table definitions",
            &format!(
                "keyspace_name text, table_name text, {OPTIONS}, flags frozen<set<text>>, \
                 gc_grace_seconds int, id uuid, {OPTIONS2}, \
                 PRIMARY KEY ((keyspace_name), table_name)"
            ),
        ),
        schema(
            "triggers",
            "trigger definitions",
            "keyspace_name text, table_name text, trigger_name text, \
             options frozen<map<text, text>>, \
             PRIMARY KEY ((keyspace_name), table_name, trigger_name)",
        ),
        schema(
            "types",
            "user defined type definitions",
            "keyspace_name text, type_name text, field_names frozen<list<text>>, \
             field_types frozen<list<text>>, PRIMARY KEY ((keyspace_name), type_name)",
        ),
        schema(
            "views",
            "view definitions",
            &format!(
                "keyspace_name text, view_name text, base_table_id uuid, base_table_name text, \
                 where_clause text, {OPTIONS}, gc_grace_seconds int, id uuid, \
                 include_all_columns boolean, {OPTIONS2}, PRIMARY KEY ((keyspace_name), view_name)"
            ),
        ),
    ];
    keyspace(ks, local_replication(), tables)
}

fn system_auth() -> KeyspaceDef {
    let ks = "system_auth";
    let auth = |name: &str, comment: &str, ddl: &str| {
        table(ks, name, ddl, TableSource::Stored, |p| {
            p.comment = comment.into();
            p.gc_grace_seconds = 90 * DAY_S;
        })
    };
    let tables = vec![
        auth(
            "network_permissions",
            "user network permissions",
            "role text, dcs frozen<set<text>>, PRIMARY KEY(role)",
        ),
        auth(
            "resource_role_permissons_index",
            "index of db roles with permissions granted on a resource",
            "resource text, role text, PRIMARY KEY(resource, role)",
        ),
        auth(
            "role_members",
            "role memberships lookup table",
            "role text, member text, PRIMARY KEY(role, member)",
        ),
        auth(
            "role_permissions",
            "permissions granted to db roles",
            "role text, resource text, permissions set<text>, PRIMARY KEY(role, resource)",
        ),
        auth(
            "roles",
            "role definitions",
            "role text, is_superuser boolean, can_login boolean, salted_hash text, \
             member_of set<text>, PRIMARY KEY(role)",
        ),
    ];
    keyspace(ks, simple_replication(1), tables)
}

fn system_distributed() -> KeyspaceDef {
    let ks = "system_distributed";
    let repair_params = |p: &mut TableParams| {
        p.comment = "Repair history".into();
        p.default_time_to_live = 30 * DAY_S;
        p.compaction = [
            (
                "class",
                "org.apache.cassandra.db.compaction.TimeWindowCompactionStrategy",
            ),
            ("compaction_window_size", "1"),
            ("compaction_window_unit", "DAYS"),
            ("max_threshold", "32"),
            ("min_threshold", "4"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    };
    let tables = vec![
        table(
            ks,
            "parent_repair_history",
            "parent_id timeuuid, keyspace_name text, columnfamily_names set<text>, \
             started_at timestamp, finished_at timestamp, exception_message text, \
             exception_stacktrace text, requested_ranges set<text>, successful_ranges set<text>, \
             options map<text, text>, PRIMARY KEY (parent_id)",
            TableSource::Stored,
            repair_params,
        ),
        table(
            ks,
            "repair_history",
            "keyspace_name text, columnfamily_name text, id timeuuid, parent_id timeuuid, \
             range_begin text, range_end text, coordinator inet, coordinator_port int, \
             participants set<inet>, participants_v2 set<text>, exception_message text, \
             exception_stacktrace text, status text, started_at timestamp, \
             finished_at timestamp, PRIMARY KEY ((keyspace_name, columnfamily_name), id)",
            TableSource::Stored,
            repair_params,
        ),
        table(
            ks,
            "view_build_status",
            "keyspace_name text, view_name text, host_id uuid, status text, \
             PRIMARY KEY ((keyspace_name, view_name), host_id)",
            TableSource::Stored,
            |p| p.comment = "Materialized View build status".into(),
        ),
    ];
    keyspace(ks, simple_replication(3), tables)
}

fn system_traces() -> KeyspaceDef {
    let ks = "system_traces";
    let trace = |name: &str, comment: &str, ddl: &str| {
        table(ks, name, ddl, TableSource::Stored, |p| {
            p.comment = comment.into();
            p.gc_grace_seconds = 0;
        })
    };
    let tables = vec![
        trace(
            "events",
            "tracing events",
            "session_id uuid, event_id timeuuid, activity text, source inet, source_port int, \
             source_elapsed int, thread text, PRIMARY KEY ((session_id), event_id)",
        ),
        trace(
            "sessions",
            "tracing sessions",
            "session_id uuid, command text, client inet, coordinator inet, \
             coordinator_port int, duration int, parameters map<text, text>, request text, \
             started_at timestamp, PRIMARY KEY ((session_id))",
        ),
    ];
    keyspace(ks, simple_replication(2), tables)
}

fn system_virtual_schema() -> KeyspaceDef {
    let ks = "system_virtual_schema";
    let virt = |name: &str, comment: &str, ddl: &str| {
        table(ks, name, ddl, TableSource::Virtual, |p| {
            p.comment = comment.into()
        })
    };
    let tables = vec![
        virt(
            "columns",
            "virtual column definitions",
            "keyspace_name text, table_name text, column_name text, clustering_order text, \
             column_name_bytes blob, kind text, position int, type text, \
             PRIMARY KEY ((keyspace_name), table_name, column_name)",
        ),
        virt(
            "keyspaces",
            "virtual keyspace definitions",
            "keyspace_name text, PRIMARY KEY ((keyspace_name))",
        ),
        virt(
            "tables",
            "virtual table definitions",
            "keyspace_name text, table_name text, comment text, \
             PRIMARY KEY ((keyspace_name), table_name)",
        ),
    ];
    // Virtual keyspaces have no replication; DESCRIBE prints them as comments.
    keyspace(ks, BTreeMap::new(), tables)
}

fn local_replication() -> BTreeMap<String, String> {
    BTreeMap::from([("class".to_string(), LOCAL_STRATEGY.to_string())])
}

fn simple_replication(rf: u32) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("class".to_string(), SIMPLE_STRATEGY.to_string()),
        ("replication_factor".to_string(), rf.to_string()),
    ])
}

fn keyspace(
    name: &str,
    replication: BTreeMap<String, String>,
    tables: Vec<TableDef>,
) -> KeyspaceDef {
    KeyspaceDef {
        name: name.to_string(),
        replication,
        durable_writes: true,
        tables: tables
            .into_iter()
            .map(|t| (t.name.clone(), Arc::new(t)))
            .collect(),
        types: BTreeMap::new(),
        is_system: true,
    }
}

/// Builds a table from `name type, ..., PRIMARY KEY (...)` as the Java sources write it.
/// The definitions are constants of this file, so a malformed one is a bug caught by tests.
fn table(
    keyspace: &str,
    name: &str,
    ddl: &str,
    source: TableSource,
    params: impl FnOnce(&mut TableParams),
) -> TableDef {
    let mut defs: Vec<(String, CqlType)> = Vec::new();
    let mut partition: Vec<String> = Vec::new();
    let mut clustering: Vec<String> = Vec::new();
    for item in split_top_level(ddl) {
        let item = item.trim();
        if let Some(pk) = item.strip_prefix("PRIMARY KEY") {
            let inner = strip_parens(pk.trim());
            let parts = split_top_level(inner);
            let mut parts = parts.iter().map(|p| p.trim());
            let first = parts.next().unwrap_or_default();
            if first.starts_with('(') {
                partition = split_top_level(strip_parens(first))
                    .iter()
                    .map(|s| s.trim().to_string())
                    .collect();
            } else {
                partition = vec![first.to_string()];
            }
            clustering = parts.map(str::to_string).collect();
        } else {
            let (col, ty) = item
                .split_once(' ')
                .unwrap_or_else(|| panic!("bad column definition {item:?} in {keyspace}.{name}"));
            let ty = parse_type(ty.trim())
                .unwrap_or_else(|| panic!("bad type {ty:?} in {keyspace}.{name}"));
            defs.push((col.to_string(), ty));
        }
    }
    let mut columns: Vec<ColumnDef> = defs
        .into_iter()
        .enumerate()
        .map(|(i, (col, ty))| {
            let (kind, position) = if let Some(p) = partition.iter().position(|c| *c == col) {
                (ColumnKind::PartitionKey, p as i32)
            } else if let Some(p) = clustering.iter().position(|c| *c == col) {
                (ColumnKind::Clustering, p as i32)
            } else {
                (ColumnKind::Regular, -1)
            };
            ColumnDef {
                name: col,
                ty,
                kind,
                position,
                order: Order::Asc,
                id: i as u32,
            }
        })
        .collect();
    TableDef::sort_columns(&mut columns);
    let mut table_params = TableParams::default();
    params(&mut table_params);
    TableDef {
        keyspace: keyspace.to_string(),
        name: name.to_string(),
        id: system_table_id(keyspace, name),
        next_column_id: columns.len() as u32,
        partition_key_len: partition.len(),
        clustering_len: clustering.len(),
        columns,
        params: table_params,
        is_counter: false,
        indexes: Vec::new(),
        dropped_columns: BTreeMap::new(),
        source,
    }
}

/// Splits on commas that are not inside `<>` or `()`.
fn split_top_level(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '<' | '(' => depth += 1,
            '>' | ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if !s[start..].trim().is_empty() {
        out.push(&s[start..]);
    }
    out
}

fn strip_parens(s: &str) -> &str {
    s.strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .unwrap_or(s)
}

/// Parses the handful of type spellings the definitions above use.
fn parse_type(s: &str) -> Option<CqlType> {
    let s = s.trim();
    if let Some((outer, inner)) = s.split_once('<') {
        let inner = inner.strip_suffix('>')?;
        let args = split_top_level(inner);
        return match (outer.trim(), args.as_slice()) {
            ("frozen", [t]) => Some(freeze(parse_type(t)?)),
            ("list", [t]) => Some(CqlType::List {
                elem: Box::new(parse_type(t)?),
                frozen: false,
            }),
            ("set", [t]) => Some(CqlType::Set {
                elem: Box::new(parse_type(t)?),
                frozen: false,
            }),
            ("map", [k, v]) => Some(CqlType::Map {
                key: Box::new(parse_type(k)?),
                value: Box::new(parse_type(v)?),
                frozen: false,
            }),
            _ => None,
        };
    }
    Some(match s.to_ascii_lowercase().as_str() {
        "text" | "varchar" => CqlType::Text,
        "ascii" => CqlType::Ascii,
        "int" => CqlType::Int,
        "bigint" => CqlType::Bigint,
        "double" => CqlType::Double,
        "boolean" => CqlType::Boolean,
        "blob" => CqlType::Blob,
        "uuid" => CqlType::Uuid,
        "timeuuid" => CqlType::Timeuuid,
        "timestamp" => CqlType::Timestamp,
        "inet" => CqlType::Inet,
        _ => return None,
    })
}

fn freeze(ty: CqlType) -> CqlType {
    match ty {
        CqlType::List { elem, .. } => CqlType::List { elem, frozen: true },
        CqlType::Set { elem, .. } => CqlType::Set { elem, frozen: true },
        CqlType::Map { key, value, .. } => CqlType::Map {
            key,
            value,
            frozen: true,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ks(name: &str) -> KeyspaceDef {
        system_keyspaces()
            .into_iter()
            .find(|k| k.name == name)
            .unwrap()
    }

    fn cols(t: &TableDef) -> Vec<(String, String, i32)> {
        t.columns
            .iter()
            .map(|c| {
                (
                    c.name.clone(),
                    crate::schema::describe::cql_type_name(&c.ty),
                    c.position,
                )
            })
            .collect()
    }

    #[test]
    fn table_ids_match_cassandra() {
        // Values printed by Cassandra 4.0: SELECT id FROM system_schema.tables.
        assert_eq!(
            system_table_id("system", "local").to_string(),
            "7ad54392-bcdd-35a6-8417-4e047860b377"
        );
        assert_eq!(
            system_table_id("system_schema", "keyspaces").to_string(),
            "abac5682-dea6-31c5-b535-b3d6cffd0fb6"
        );
    }

    #[test]
    fn system_local_has_what_clients_read() {
        let system = ks("system");
        let local = &system.tables["local"];
        let names: Vec<&str> = local.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "key",
                "bootstrapped",
                "broadcast_address",
                "broadcast_port",
                "cluster_name",
                "cql_version",
                "data_center",
                "gossip_generation",
                "host_id",
                "listen_address",
                "listen_port",
                "native_protocol_version",
                "partitioner",
                "rack",
                "release_version",
                "rpc_address",
                "rpc_port",
                "schema_version",
                "tokens",
                "truncated_at"
            ]
        );
        let ty = |n: &str| crate::schema::describe::cql_type_name(&local.column(n).unwrap().ty);
        assert_eq!(ty("tokens"), "set<text>");
        assert_eq!(ty("truncated_at"), "map<uuid, blob>");
        assert_eq!(ty("host_id"), "uuid");
        assert_eq!(ty("rpc_address"), "inet");
        assert_eq!(local.partition_key_len, 1);
        assert_eq!(local.source, TableSource::Virtual);
        assert_eq!(local.params.comment, "information about the local node");
        assert_eq!(local.params.gc_grace_seconds, 0);
        assert_eq!(local.params.memtable_flush_period_in_ms, 3_600_000);
    }

    #[test]
    fn peers_tables() {
        let system = ks("system");
        let peers = &system.tables["peers"];
        assert_eq!(
            cols(peers).iter().map(|c| c.0.as_str()).collect::<Vec<_>>(),
            [
                "peer",
                "data_center",
                "host_id",
                "preferred_ip",
                "rack",
                "release_version",
                "rpc_address",
                "schema_version",
                "tokens"
            ]
        );
        let v2 = &system.tables["peers_v2"];
        assert_eq!((v2.partition_key_len, v2.clustering_len), (1, 1));
        assert_eq!(v2.columns[1].name, "peer_port");
        assert_eq!(v2.columns[1].kind, ColumnKind::Clustering);
        assert!(v2.column("native_address").is_some());
        assert!(v2.column("native_port").is_some());
        let se = &system.tables["size_estimates"];
        assert_eq!((se.partition_key_len, se.clustering_len), (1, 3));
    }

    #[test]
    fn system_schema_tables() {
        let schema = ks("system_schema");
        let names: Vec<&String> = schema.tables.keys().collect();
        assert_eq!(
            names,
            [
                "aggregates",
                "columns",
                "dropped_columns",
                "functions",
                "indexes",
                "keyspaces",
                "tables",
                "triggers",
                "types",
                "views"
            ]
        );
        assert_eq!(
            cols(&schema.tables["columns"]),
            [
                ("keyspace_name".into(), "text".into(), 0),
                ("table_name".into(), "text".into(), 0),
                ("column_name".into(), "text".into(), 1),
                ("clustering_order".into(), "text".into(), -1),
                ("column_name_bytes".into(), "blob".into(), -1),
                ("kind".into(), "text".into(), -1),
                ("position".into(), "int".into(), -1),
                ("type".into(), "text".into(), -1),
            ]
        );
        let tables = &schema.tables["tables"];
        let ty = |n: &str| crate::schema::describe::cql_type_name(&tables.column(n).unwrap().ty);
        assert_eq!(ty("flags"), "frozen<set<text>>");
        assert_eq!(ty("extensions"), "frozen<map<text, blob>>");
        assert_eq!(ty("caching"), "frozen<map<text, text>>");
        assert_eq!(tables.columns.len(), 22);
        let keyspaces = &schema.tables["keyspaces"];
        assert_eq!(
            cols(keyspaces),
            [
                ("keyspace_name".into(), "text".into(), 0),
                ("durable_writes".into(), "boolean".into(), -1),
                ("replication".into(), "frozen<map<text, text>>".into(), -1),
            ]
        );
        assert!(
            schema
                .tables
                .values()
                .all(|t| t.source == TableSource::Virtual)
        );
        assert_eq!(schema.replication["class"], LOCAL_STRATEGY);
    }

    #[test]
    fn replicated_system_keyspaces() {
        let auth = ks("system_auth");
        assert_eq!(auth.replication["replication_factor"], "1");
        assert_eq!(auth.tables["roles"].params.gc_grace_seconds, 7_776_000);
        assert!(auth.tables.contains_key("resource_role_permissons_index"));
        assert_eq!(
            ks("system_distributed").replication["replication_factor"],
            "3"
        );
        let traces = ks("system_traces");
        assert_eq!(traces.replication["replication_factor"], "2");
        let events = &traces.tables["events"];
        assert_eq!(events.source, TableSource::Stored);
        assert_eq!(events.columns[1].name, "event_id");
        assert_eq!(events.clustering_len, 1);
        assert!(
            traces.tables["sessions"]
                .column("coordinator_port")
                .is_some()
        );
    }
}
