//! The executor's side of schema propagation: recording local DDL in the schema history,
//! merging a peer's schema into ours (with the engine tables, index tables and client
//! events that follows), and the hooks the node uses to ship changes and publish the
//! schema version in gossip. The pure merge is `crate::schema::merge`.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};

use uuid::Uuid;

use super::{Executor, ddl, engine_error, index, now_micros};
use crate::error::{CqlError, CqlResult};
use crate::protocol::{Event, SchemaChange};
use crate::schema::merge::SchemaState;
use crate::schema::persist::{decode_state, encode_state, schema_digest};
use crate::schema::{KeyspaceDef, Schema, TableDef};

/// Called with the new schema version after every schema change, local or merged.
pub type SchemaListener = Box<dyn Fn(Uuid) + Send + Sync>;

/// Ships a local schema change to the other nodes. The DDL response waits for the returned
/// future, so a client that got its answer can use the new schema on any live node.
pub trait SchemaAnnouncer: Send + Sync {
    fn announce(&self, version: Uuid) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

/// The hooks a clustered node sets; a single node leaves them empty.
#[derive(Default)]
pub struct SyncHooks {
    listeners: Mutex<Vec<SchemaListener>>,
    announcer: OnceLock<Arc<dyn SchemaAnnouncer>>,
}

fn user_keyspaces(schema: &Schema) -> impl Iterator<Item = &KeyspaceDef> {
    schema
        .keyspaces
        .values()
        .filter(|k| !k.is_system)
        .map(|k| k.as_ref())
}

/// The schema whose user part is `state`, with the built-in keyspaces of `base`.
fn schema_from_state(base: &Schema, state: SchemaState) -> Schema {
    let user = state.materialize();
    let mut keyspaces: BTreeMap<_, _> = base
        .keyspaces
        .iter()
        .filter(|(_, k)| k.is_system)
        .map(|(n, k)| (n.clone(), k.clone()))
        .collect();
    let version = schema_digest(user.iter());
    for ks in user {
        keyspaces.insert(ks.name.clone(), Arc::new(ks));
    }
    let mut schema = Schema {
        keyspaces,
        version,
        state: Arc::new(state),
        ..Default::default()
    };
    schema.reindex();
    schema
}

fn change(change: &'static str, target: &'static str, ks: &str, name: &str) -> SchemaChange {
    SchemaChange {
        change,
        target,
        keyspace: ks.to_string(),
        name: name.to_string(),
        arguments: Vec::new(),
    }
}

/// The SCHEMA_CHANGE events that take a client from `old` to `new` (user keyspaces):
/// creations and updates parents first, drops children first; a dropped keyspace's tables
/// and types are covered by its own event, as when it is dropped locally.
fn events_between(old: &Schema, new: &Schema) -> Vec<SchemaChange> {
    let olds: BTreeMap<&str, &KeyspaceDef> =
        user_keyspaces(old).map(|k| (k.name.as_str(), k)).collect();
    let news: BTreeMap<&str, &KeyspaceDef> =
        user_keyspaces(new).map(|k| (k.name.as_str(), k)).collect();
    let mut up = Vec::new();
    let mut down = Vec::new();
    for (name, k) in &news {
        match olds.get(name) {
            None => up.push(change("CREATED", "KEYSPACE", name, "")),
            Some(o) if o.replication != k.replication || o.durable_writes != k.durable_writes => {
                up.push(change("UPDATED", "KEYSPACE", name, ""))
            }
            Some(_) => {}
        }
    }
    let empty = KeyspaceDef {
        name: String::new(),
        replication: BTreeMap::new(),
        durable_writes: true,
        tables: BTreeMap::new(),
        types: BTreeMap::new(),
        is_system: false,
    };
    for (name, k) in &news {
        let o = olds.get(name).copied().unwrap_or(&empty);
        for (t, def) in &k.types {
            match o.types.get(t) {
                None => up.push(change("CREATED", "TYPE", name, t)),
                Some(od) if od != def => up.push(change("UPDATED", "TYPE", name, t)),
                Some(_) => {}
            }
        }
        for (t, def) in &k.tables {
            match o.tables.get(t) {
                None => up.push(change("CREATED", "TABLE", name, t)),
                Some(od) if od != def => up.push(change("UPDATED", "TABLE", name, t)),
                Some(_) => {}
            }
        }
        for t in o.tables.keys().filter(|t| !k.tables.contains_key(*t)) {
            down.push(change("DROPPED", "TABLE", name, t));
        }
        for t in o.types.keys().filter(|t| !k.types.contains_key(*t)) {
            down.push(change("DROPPED", "TYPE", name, t));
        }
    }
    for name in olds.keys().filter(|n| !news.contains_key(*n)) {
        down.push(change("DROPPED", "KEYSPACE", name, ""));
    }
    up.extend(down);
    up
}

/// Every stored table of the user keyspaces by engine id.
fn stored(schema: &Schema) -> BTreeMap<[u8; 16], Arc<TableDef>> {
    user_keyspaces(schema)
        .flat_map(|k| k.tables.values())
        .map(|t| (t.engine_id().0, t.clone()))
        .collect()
}

impl Executor {
    /// Registers a callback for every new schema version (the node publishes it in gossip).
    pub fn on_schema_change(&self, f: SchemaListener) {
        self.sync.listeners.lock().expect("listeners lock").push(f);
    }

    /// Sets what ships local DDL to the other nodes. Set once, at start-up.
    pub fn set_schema_announcer(&self, a: Arc<dyn SchemaAnnouncer>) {
        if self.sync.announcer.set(a).is_err() {
            tracing::warn!("schema announcer already set; keeping the first");
        }
    }

    /// The user schema with its history, encoded for a peer (the schema file format).
    pub fn user_schema_bytes(&self) -> Vec<u8> {
        encode_state(&self.schema().state)
    }

    /// Waits until the announcer shipped the current schema (after local DDL).
    pub(crate) async fn announce_schema(&self) {
        if let Some(a) = self.sync.announcer.get() {
            let version = self.schema().version;
            a.announce(version).await;
        }
    }

    /// Records a local DDL result in the history, persists and installs it, and tells this
    /// node's clients. Called with the DDL lock held.
    pub(crate) fn commit_local(&self, new: Schema, event: &SchemaChange) -> CqlResult<()> {
        let old = self.schema();
        let state = old
            .state
            .apply_local(user_keyspaces(&new), self.next_timestamp());
        self.install(&old, state)?;
        let _ = self.events.send(Event::SchemaChange(event.clone()));
        Ok(())
    }

    /// Persists `state`, swaps the snapshot and calls the listeners.
    fn install(&self, base: &Schema, mut state: SchemaState) -> CqlResult<Arc<Schema>> {
        state.expire(now_micros());
        self.install_built(schema_from_state(base, state))
    }

    /// [`Executor::install`] of a schema already built from its (expired) state.
    fn install_built(&self, schema: Schema) -> CqlResult<Arc<Schema>> {
        self.store
            .save_state(&schema.state)
            .map_err(CqlError::from)?;
        let schema = Arc::new(schema);
        *self.schema.write().expect("schema lock") = schema.clone();
        // Prepared statements keep their AST and resolve names at execution; dropping the
        // cache forces clients to re-prepare so result metadata is never stale.
        self.prepared.write().expect("prepared lock").clear();
        for l in self.sync.listeners.lock().expect("listeners lock").iter() {
            l(schema.version);
        }
        Ok(schema)
    }

    /// Merges a peer's schema (bytes of [`Executor::user_schema_bytes`]) into ours: new
    /// tables get their engine tables (and index tables) before the schema names them,
    /// dropped ones lose them after; this node's clients get a SCHEMA_CHANGE event per
    /// change, since drivers listen on one node only. Returns whether anything changed.
    /// Blocking (file and engine I/O, the DDL lock): call it from a blocking thread.
    pub fn merge_remote_schema(&self, bytes: &[u8]) -> CqlResult<bool> {
        let remote = decode_state(bytes)
            .map_err(|e| CqlError::server(format!("schema from a peer is unreadable: {e}")))?;
        let _guard = self.ddl_guard();
        let old = self.schema();
        let mut merged = old.state.merge(&remote);
        if merged == *old.state {
            return Ok(false);
        }
        merged.expire(now_micros());
        // Built once: materializing and digesting is the costly part of a merge.
        let preview = schema_from_state(&old, merged);
        let before = stored(&old);
        let after = stored(&preview);
        let mut complete = Vec::new();
        // Tables (and the index tables of their indexes) exist in the engine before the
        // schema refers to them, as for a local CREATE TABLE.
        for (id, t) in &after {
            if !before.contains_key(id) {
                self.engine
                    .create_table(t.engine_id(), ddl::engine_options(t))
                    .map_err(engine_error)?;
                for i in t.indexes.iter().filter(|i| index::target(t, i).is_some()) {
                    let iid = index::table_id(t, &i.name);
                    self.engine
                        .create_table(iid, index::index_options(t))
                        .map_err(engine_error)?;
                    complete.push(iid);
                }
            }
        }
        let schema = self.install_built(preview)?;
        // A table new to this node has no rows here: its indexes are complete. Recorded
        // after the schema names them; a crash in between only costs an empty rebuild.
        for iid in complete {
            index::mark_built(self, iid)?;
        }
        for (id, t) in &after {
            let Some(prev) = before.get(id) else { continue };
            if ddl::engine_options(prev) != ddl::engine_options(t) {
                self.engine
                    .alter_table(t.engine_id(), ddl::engine_options(t))
                    .map_err(engine_error)?;
            }
            // Built after the schema is live, as a local CREATE INDEX, so writes arriving
            // meanwhile maintain the index too.
            for i in &t.indexes {
                if !prev.indexes.iter().any(|p| p.name == i.name) {
                    index::build(self, t, i)?;
                }
            }
            for p in &prev.indexes {
                if !t.indexes.iter().any(|i| i.name == p.name) {
                    self.drop_index_table(prev, &p.name)?;
                }
            }
        }
        for (id, t) in &before {
            if !after.contains_key(id) {
                // The schema no longer names it: on restart its log entries are skipped.
                self.engine
                    .drop_table(t.engine_id())
                    .map_err(engine_error)?;
                for i in &t.indexes {
                    self.drop_index_table(t, &i.name)?;
                }
            }
        }
        for c in events_between(&old, &schema) {
            tracing::info!(change = c.change, target = c.target, keyspace = %c.keyspace, name = %c.name, "schema change from a peer");
            let _ = self.events.send(Event::SchemaChange(c));
        }
        Ok(true)
    }

    fn drop_index_table(&self, table: &TableDef, name: &str) -> CqlResult<()> {
        let Some(i) = table.indexes.iter().find(|i| i.name == name) else {
            return Ok(());
        };
        if index::target(table, i).is_none() {
            return Ok(());
        }
        let id = index::table_id(table, name);
        // The schema no longer names it, so a failure here only leaves files behind; the
        // merge itself succeeded and must not be reported as failed.
        if let Err(e) = self.engine.drop_table(id) {
            tracing::warn!(index = name, table = %table.name, "dropping an index table: {e}");
        }
        index::set_built(self, id, false)
    }
}

#[cfg(test)]
mod tests;
