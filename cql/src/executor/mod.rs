//! Statement execution on one node: resolves names against the schema snapshot, binds
//! values, turns statements into engine mutations and reads, and builds result sets.

pub mod binds;
pub mod current;
pub mod ddl;
pub mod index;
pub mod lwt;
pub mod modify;
pub mod paging;
pub mod restrictions;
pub mod schema_sync;
pub mod select;
pub mod system_views;
pub mod trace;
pub mod value;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicI64, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex, RwLock};

use bytes::Bytes;
use shoal_engine::{Engine, EngineError, Mutation, ReadCommand, ReadResult};
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::coordinator::{Coordinator, WriteOptions};
use crate::error::{Consistency, CqlError, CqlResult, WriteType};
use crate::parser::{self, Parsed, ast::Statement};
use crate::protocol::{
    BatchQuery, BatchRequest, ColumnSpec, Event, QueryParameters, ResultBody, RowsMetadata,
    SchemaChange, Values,
};
use crate::schema::persist::SchemaStore;
use crate::schema::{KeyspaceDef, Schema};

/// What the node tells clients about itself (system.local, DESCRIBE CLUSTER).
#[derive(Clone, Debug)]
pub struct NodeInfo {
    pub cluster_name: String,
    pub host_id: Uuid,
    pub tokens: Vec<i64>,
    pub listen_address: IpAddr,
    pub broadcast_address: IpAddr,
    pub rpc_address: IpAddr,
    pub native_port: u16,
    pub storage_port: u16,
    pub dc: String,
    pub rack: String,
    /// Full class name, e.g. `org.apache.cassandra.locator.SimpleSnitch`.
    pub snitch: String,
    pub gossip_generation: i32,
}

/// The release Shoal reports. cqlsh 6.2 compares the part before the last `-` with its own
/// 5.0.0 and drivers pick their schema parser from it (../shared/cql-conformance.md §0.7).
pub const RELEASE_VERSION: &str = "5.0.0-shoal";
/// The CQL language version of Cassandra 5.0.
pub const CQL_VERSION: &str = "3.4.7";
pub const PARTITIONER: &str = "org.apache.cassandra.dht.Murmur3Partitioner";

/// Per-connection state.
#[derive(Clone, Debug, Default)]
pub struct Session {
    pub keyspace: Option<String>,
    pub protocol_version: u8,
    /// The logged-in role; `None` is Cassandra's anonymous user (AllowAllAuthenticator).
    pub user: Option<String>,
    /// Set for the one request that asked for tracing.
    pub trace: Option<Arc<trace::Trace>>,
}

impl Session {
    /// Records a tracing event when the request is traced; `activity` is only built then.
    pub fn trace(&self, activity: impl FnOnce() -> String) {
        if let Some(t) = &self.trace {
            t.event(activity());
        }
    }
}

/// The result of one request.
#[derive(Debug)]
pub struct Outcome {
    pub body: ResultBody,
    pub warnings: Vec<String>,
}

impl Outcome {
    fn new(body: ResultBody) -> Self {
        Outcome {
            body,
            warnings: Vec::new(),
        }
    }
}

/// A prepared statement.
#[derive(Debug)]
pub struct Prepared {
    pub id: Bytes,
    pub query: String,
    pub keyspace: Option<String>,
    pub parsed: Parsed,
    pub bind_specs: Vec<ColumnSpec>,
    pub pk_indexes: Vec<u16>,
    pub result: RowsMetadata,
}

/// Executes statements for every connection of the node.
pub struct Executor {
    schema: RwLock<Arc<Schema>>,
    engine: Arc<Engine>,
    node: NodeInfo,
    store: SchemaStore,
    /// Serialises DDL so two schema changes never race on the file or the snapshot.
    ddl_lock: Mutex<()>,
    prepared: RwLock<HashMap<Bytes, Arc<Prepared>>>,
    events: broadcast::Sender<Event>,
    last_timestamp: AtomicI64,
    /// Stripes serialising writes to indexed partitions (see `index::apply_indexed`).
    pub(crate) index_locks: Vec<tokio::sync::Mutex<()>>,
    auth: crate::auth::Auth,
    /// Set by a clustered node; without it every write and read stays on this node.
    coordinator: std::sync::OnceLock<Arc<dyn Coordinator>>,
    /// The other nodes (system.peers); unset on a node without gossip.
    cluster_view: std::sync::OnceLock<Arc<dyn crate::cluster_view::ClusterView>>,
    /// Schema propagation hooks (`schema_sync`).
    sync: schema_sync::SyncHooks,
    /// Set by a clustered node: conditional writes and serial reads run Paxos through it.
    cas: std::sync::OnceLock<Arc<dyn crate::paxos::Cas>>,
}

/// Cassandra caps prepared statements by memory; a count bound keeps a client that prepares
/// unique strings in a loop from growing the cache without end.
const MAX_PREPARED: usize = 100_000;

impl Executor {
    /// Loads the schema from `schema_dir` and builds the executor. The engine must already be
    /// open with the stored tables of [`Executor::load_schema`].
    pub fn new(engine: Arc<Engine>, node: NodeInfo, store: SchemaStore, schema: Schema) -> Self {
        let (events, _) = broadcast::channel(1024);
        let ex = Executor {
            schema: RwLock::new(Arc::new(schema)),
            engine,
            node,
            store,
            ddl_lock: Mutex::new(()),
            prepared: RwLock::new(HashMap::new()),
            events,
            last_timestamp: AtomicI64::new(0),
            index_locks: (0..index::STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
            auth: crate::auth::Auth::new(crate::auth::AuthConfig::default()),
            coordinator: std::sync::OnceLock::new(),
            cluster_view: std::sync::OnceLock::new(),
            sync: Default::default(),
            cas: std::sync::OnceLock::new(),
        };
        if let Err(e) = index::rebuild_unfinished(&ex) {
            tracing::error!("rebuilding secondary indexes: {e}");
        }
        ex
    }

    /// Every engine table the schema needs opened: stored tables and index tables.
    pub fn engine_tables(
        schema: &Schema,
    ) -> Vec<(shoal_engine::TableId, shoal_engine::TableOptions)> {
        let mut out: Vec<_> = schema
            .stored_tables()
            .map(|t| (t.engine_id(), ddl::engine_options(t)))
            .collect();
        out.extend(index::engine_tables(schema));
        out
    }

    /// Sets the authenticator and authorizer (before the executor is shared).
    pub fn with_auth(mut self, config: crate::auth::AuthConfig) -> Self {
        self.auth = crate::auth::Auth::new(config);
        self
    }

    pub fn auth(&self) -> &crate::auth::Auth {
        &self.auth
    }

    /// Reads the persisted schema and adds the built-in keyspaces.
    pub fn load_schema(store: &SchemaStore) -> CqlResult<Schema> {
        let state = store
            .load_state()
            .map_err(crate::schema::persist::load_error)?;
        let mut schema = build_schema(state.materialize());
        schema.state = Arc::new(state);
        Ok(schema)
    }

    pub fn schema(&self) -> Arc<Schema> {
        self.schema.read().expect("schema lock").clone()
    }

    pub fn node(&self) -> &NodeInfo {
        &self.node
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Routes statement writes and reads through `c` from now on. Set once, at start-up.
    pub fn set_coordinator(&self, c: Arc<dyn Coordinator>) {
        if self.coordinator.set(c).is_err() {
            tracing::warn!("coordinator already set; keeping the first");
        }
    }

    /// Routes conditional writes and serial reads through `c` from now on (start-up only).
    pub fn set_cas(&self, c: Arc<dyn crate::paxos::Cas>) {
        if self.cas.set(c).is_err() {
            tracing::warn!("cas already set; keeping the first");
        }
    }

    pub(crate) fn cas(&self) -> Option<&Arc<dyn crate::paxos::Cas>> {
        self.cas.get()
    }

    /// Writes a statement's mutations at a consistency level: through the coordinator when
    /// the node is clustered, else on this node.
    pub async fn write(
        &self,
        schema: &Arc<Schema>,
        mutations: Vec<Mutation>,
        options: WriteOptions,
    ) -> CqlResult<()> {
        if mutations.is_empty() {
            return Ok(());
        }
        match self.coordinator.get() {
            Some(c) if !mutations.iter().all(|m| is_node_local(schema, m.table)) => {
                c.write(schema.clone(), mutations, options).await
            }
            _ => self.apply_local(mutations).await,
        }
    }

    /// Reads for a statement at a consistency level (see [`Executor::write`]).
    pub async fn read(
        &self,
        schema: &Arc<Schema>,
        cmd: ReadCommand,
        consistency: Consistency,
    ) -> CqlResult<ReadResult> {
        if matches!(consistency, Consistency::Serial | Consistency::LocalSerial)
            && let Some(cas) = self.cas.get()
            && !is_node_local(schema, cmd.table)
        {
            return cas.serial_read(schema.clone(), cmd, consistency).await;
        }
        match self.coordinator.get() {
            Some(c) if !is_node_local(schema, cmd.table) => {
                c.read(schema.clone(), cmd, consistency).await
            }
            _ => self.read_local(&cmd),
        }
    }

    /// Reads this node's engine only (a replica answering, or node-local tables).
    pub fn read_local(&self, cmd: &ReadCommand) -> CqlResult<ReadResult> {
        self.engine.read(cmd).map_err(engine_error)
    }

    /// Truncates a table on this node only (a replica answering a TRUNCATE request).
    pub fn truncate_local(&self, table: shoal_engine::TableId) -> CqlResult<()> {
        self.engine
            .truncate(table)
            .map_err(|e| CqlError::Truncate(e.to_string()))
    }

    /// Events for connections that sent REGISTER.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// Sends an event (TOPOLOGY_CHANGE, STATUS_CHANGE) to connections that registered for it.
    pub fn publish_event(&self, event: Event) {
        let _ = self.events.send(event);
    }

    /// Installs the cluster view system.peers is built from (once; later calls are ignored).
    pub fn set_cluster_view(&self, view: Arc<dyn crate::cluster_view::ClusterView>) {
        let _ = self.cluster_view.set(view);
    }

    pub fn cluster_view(&self) -> Option<&Arc<dyn crate::cluster_view::ClusterView>> {
        self.cluster_view.get()
    }

    /// A write timestamp in µs, strictly increasing on this node, as Cassandra's
    /// `ClientState.getTimestamp`: two writes from one node never tie.
    pub fn next_timestamp(&self) -> i64 {
        let now = now_micros();
        let mut last = self.last_timestamp.load(AtomicOrdering::Relaxed);
        loop {
            let next = if now > last { now } else { last + 1 };
            match self.last_timestamp.compare_exchange_weak(
                last,
                next,
                AtomicOrdering::Relaxed,
                AtomicOrdering::Relaxed,
            ) {
                Ok(_) => return next,
                Err(actual) => last = actual,
            }
        }
    }

    /// QUERY.
    pub async fn query(
        &self,
        session: &mut Session,
        query: &str,
        params: &QueryParameters,
    ) -> CqlResult<Outcome> {
        session.trace(|| format!("Parsing {query}"));
        let parsed = parser::parse(query)?;
        session.trace(|| "Preparing statement".into());
        let keyspace = params.keyspace.clone().or_else(|| session.keyspace.clone());
        let schema = self.schema();
        let specs = binds::analyze(&schema, keyspace.as_deref(), &parsed)?;
        let bound = binds::Bound::new(&specs.specs, &parsed.bind_names, &params.values)?;
        self.run(
            session,
            keyspace.as_deref(),
            &parsed.statement,
            &bound,
            params,
            &schema,
        )
        .await
    }

    /// PREPARE.
    pub fn prepare(
        &self,
        session: &Session,
        query: &str,
        keyspace: Option<&str>,
    ) -> CqlResult<ResultBody> {
        let keyspace = keyspace
            .map(str::to_string)
            .or_else(|| session.keyspace.clone());
        let id = prepared_id(keyspace.as_deref(), query);
        if let Some(p) = self.prepared.read().expect("prepared lock").get(&id) {
            return Ok(prepared_body(p));
        }
        let parsed = parser::parse(query)?;
        let schema = self.schema();
        let analysis = binds::analyze(&schema, keyspace.as_deref(), &parsed)?;
        let result = match &parsed.statement {
            Statement::Select(s) => select::result_metadata(self, &schema, keyspace.as_deref(), s)?,
            _ => RowsMetadata {
                no_metadata: true,
                ..Default::default()
            },
        };
        let prepared = Arc::new(Prepared {
            id: id.clone(),
            query: query.to_string(),
            keyspace,
            parsed,
            bind_specs: analysis.specs,
            pk_indexes: analysis.pk_indexes,
            result,
        });
        let body = prepared_body(&prepared);
        let mut cache = self.prepared.write().expect("prepared lock");
        if cache.len() >= MAX_PREPARED {
            cache.clear();
        }
        cache.insert(id, prepared);
        Ok(body)
    }

    /// EXECUTE.
    pub async fn execute(
        &self,
        session: &mut Session,
        id: &Bytes,
        params: &QueryParameters,
    ) -> CqlResult<Outcome> {
        let prepared = self.lookup_prepared(id)?;
        let bound = binds::Bound::new(
            &prepared.bind_specs,
            &prepared.parsed.bind_names,
            &params.values,
        )?;
        let schema = self.schema();
        let keyspace = prepared.keyspace.clone();
        let mut outcome = self
            .run(
                session,
                keyspace.as_deref(),
                &prepared.parsed.statement,
                &bound,
                params,
                &schema,
            )
            .await?;
        // LWT results always carry their metadata: its columns depend on the outcome.
        if params.skip_metadata
            && !lwt::has_conditions(&prepared.parsed.statement)
            && let ResultBody::Rows(rows) = &mut outcome.body
        {
            rows.metadata.no_metadata = true;
        }
        Ok(outcome)
    }

    /// The text of a prepared statement, for traces.
    pub fn prepared_query(&self, id: &Bytes) -> Option<String> {
        self.prepared
            .read()
            .expect("prepared lock")
            .get(id)
            .map(|p| p.query.clone())
    }

    fn lookup_prepared(&self, id: &Bytes) -> CqlResult<Arc<Prepared>> {
        self.prepared.read().expect("prepared lock").get(id).cloned().ok_or_else(|| CqlError::Unprepared {
            message: format!("Prepared query with ID {} not found (either the query was not prepared on this host (maybe the host has been restarted?) or you have prepared too many queries and it has been evicted from the internal cache)", hex(id)),
            id: id.clone(),
        })
    }

    /// BATCH message.
    pub async fn batch(&self, session: &mut Session, req: &BatchRequest) -> CqlResult<Outcome> {
        let schema = self.schema();
        let keyspace = req.keyspace.clone().or_else(|| session.keyspace.clone());
        // One timestamp for every statement of the batch, as Cassandra does: the batch is
        // one write, and ties between its statements resolve by value.
        let timestamp = Some(
            req.default_timestamp
                .unwrap_or_else(|| self.next_timestamp()),
        );
        let mut children: Vec<(Arc<Prepared>, Values)> = Vec::with_capacity(req.queries.len());
        for q in &req.queries {
            match q {
                BatchQuery::Query { query, values } => {
                    let parsed = parser::parse(query)?;
                    let analysis = binds::analyze(&schema, keyspace.as_deref(), &parsed)?;
                    children.push((
                        Arc::new(Prepared {
                            id: Bytes::new(),
                            query: query.clone(),
                            keyspace: keyspace.clone(),
                            parsed,
                            bind_specs: analysis.specs,
                            pk_indexes: analysis.pk_indexes,
                            result: RowsMetadata::default(),
                        }),
                        values.clone(),
                    ));
                }
                BatchQuery::Prepared { id, values } => {
                    children.push((self.lookup_prepared(id)?, values.clone()))
                }
            }
        }
        for (p, _) in &children {
            self.auth.check_statement(
                self,
                session.user.as_deref(),
                p.keyspace.as_deref(),
                &p.parsed.statement,
                &schema,
            )?;
        }
        if children
            .iter()
            .any(|(p, _)| lwt::has_conditions(&p.parsed.statement))
        {
            return self.conditional_batch(&schema, req, &children).await;
        }
        let mut mutations = Vec::new();
        for (p, values) in &children {
            let bound = binds::Bound::new(&p.bind_specs, &p.parsed.bind_names, values)?;
            match &p.parsed.statement {
                Statement::Insert(_) | Statement::Update(_) | Statement::Delete(_) => {}
                _ => {
                    return Err(CqlError::invalid(
                        "Invalid statement in batch: only UPDATE, INSERT and DELETE statements are allowed.",
                    ));
                }
            }
            let ctx = modify::WriteContext {
                executor: self,
                schema: &schema,
                keyspace: p.keyspace.as_deref(),
                timestamp,
                batch_timestamp: None,
            };
            mutations.extend(modify::mutations_for(&ctx, &p.parsed.statement, &bound)?);
        }
        let kind = match req.batch_type {
            0 => crate::parser::ast::BatchKind::Logged,
            1 => crate::parser::ast::BatchKind::Unlogged,
            2 => crate::parser::ast::BatchKind::Counter,
            other => {
                return Err(CqlError::protocol(format!(
                    "Invalid BATCH message type {other}"
                )));
            }
        };
        modify::check_batch_kind(&schema, kind, &mutations_tables(&children))?;
        session.trace(|| format!("Applying batch of {} mutations", mutations.len()));
        let write_type = match kind {
            crate::parser::ast::BatchKind::Logged => WriteType::Batch,
            crate::parser::ast::BatchKind::Unlogged => WriteType::UnloggedBatch,
            crate::parser::ast::BatchKind::Counter => WriteType::Counter,
        };
        let options = WriteOptions {
            consistency: req.consistency,
            write_type,
        };
        self.write(&schema, merge_mutations(mutations), options)
            .await?;
        Ok(Outcome::new(ResultBody::Void))
    }

    async fn conditional_batch(
        &self,
        schema: &Arc<Schema>,
        req: &BatchRequest,
        children: &[(Arc<Prepared>, Values)],
    ) -> CqlResult<Outcome> {
        let kind = match req.batch_type {
            0 => crate::parser::ast::BatchKind::Logged,
            1 => crate::parser::ast::BatchKind::Unlogged,
            _ => crate::parser::ast::BatchKind::Counter,
        };
        let bounds = children
            .iter()
            .map(|(p, v)| binds::Bound::new(&p.bind_specs, &p.parsed.bind_names, v))
            .collect::<CqlResult<Vec<_>>>()?;
        let refs: Vec<_> = children
            .iter()
            .zip(&bounds)
            .map(|((p, _), b)| (p.keyspace.clone(), &p.parsed.statement, b))
            .collect();
        let consistency = lwt::Levels::of(req.consistency, req.serial_consistency)?;
        lwt::execute_batch(self, schema, kind, &refs, consistency).await
    }

    /// Runs one parsed statement.
    async fn run(
        &self,
        session: &mut Session,
        keyspace: Option<&str>,
        statement: &Statement,
        bound: &binds::Bound<'_>,
        params: &QueryParameters,
        schema: &Arc<Schema>,
    ) -> CqlResult<Outcome> {
        self.auth
            .check_statement(self, session.user.as_deref(), keyspace, statement, schema)?;
        match statement {
            s if lwt::has_conditions(s) => {
                let levels = lwt::Levels::of(params.consistency, params.serial_consistency)?;
                lwt::execute(self, schema, keyspace, s, bound, levels).await
            }
            Statement::Select(s) => {
                session.trace(|| {
                    let ks = s.table.keyspace.as_deref().or(keyspace).unwrap_or("");
                    format!("Executing read on {ks}.{}", s.table.name)
                });
                let outcome = select::execute(self, schema, keyspace, s, bound, params).await?;
                if let ResultBody::Rows(r) = &outcome.body {
                    session.trace(|| format!("Read {} live rows", r.rows.len()));
                }
                Ok(outcome)
            }
            Statement::Insert(_) | Statement::Update(_) | Statement::Delete(_) => {
                let ctx = modify::WriteContext {
                    executor: self,
                    schema,
                    keyspace,
                    timestamp: params.default_timestamp,
                    batch_timestamp: None,
                };
                let mutations = modify::mutations_for(&ctx, statement, bound)?;
                session.trace(|| "Appending to commitlog".into());
                let options = WriteOptions {
                    consistency: params.consistency,
                    write_type: simple_write_type(schema, &mutations),
                };
                self.write(schema, mutations, options).await?;
                session.trace(|| "Adding to memtable".into());
                Ok(Outcome::new(ResultBody::Void))
            }
            Statement::Batch(b) => {
                let ctx = modify::WriteContext {
                    executor: self,
                    schema,
                    keyspace,
                    timestamp: params.default_timestamp,
                    batch_timestamp: None,
                };
                let mutations = modify::batch_mutations(&ctx, b, bound)?;
                let write_type = match b.kind {
                    crate::parser::ast::BatchKind::Logged => WriteType::Batch,
                    crate::parser::ast::BatchKind::Unlogged => WriteType::UnloggedBatch,
                    crate::parser::ast::BatchKind::Counter => WriteType::Counter,
                };
                let options = WriteOptions {
                    consistency: params.consistency,
                    write_type,
                };
                self.write(schema, mutations, options).await?;
                Ok(Outcome::new(ResultBody::Void))
            }
            Statement::Use(ks) => {
                if schema.keyspace(ks).is_none() {
                    return Err(CqlError::invalid(format!("Keyspace '{ks}' does not exist")));
                }
                session.keyspace = Some(ks.clone());
                Ok(Outcome::new(ResultBody::SetKeyspace(ks.clone())))
            }
            Statement::Describe(d) => {
                let cluster = system_views::cluster_info(self, schema, keyspace);
                let rows = crate::schema::describe::describe(schema, d, keyspace, &cluster)?;
                Ok(Outcome::new(ResultBody::Rows(paging::page_rows(
                    rows, params,
                )?)))
            }
            Statement::Truncate(name) if self.coordinator.get().is_some() => {
                let table = ddl::truncate_target(schema, keyspace, name)?;
                match self.coordinator.get() {
                    // Every node truncates, so the data is gone cluster-wide (and the call
                    // fails while any node is down, as Cassandra's does).
                    Some(c) if !is_node_local(schema, table) => {
                        c.truncate(schema.clone(), table).await?
                    }
                    _ => self.truncate_local(table)?,
                }
                Ok(Outcome::new(ResultBody::Void))
            }
            s if crate::auth::statements::handles(s) => Ok(Outcome::new(
                crate::auth::statements::execute(self, session, keyspace, s).await?,
            )),
            other => {
                let change = ddl::execute(self, keyspace, other, bound)?;
                if let Some(c) = &change {
                    // Peers have the change (or the bounded wait ended) before the client
                    // hears of it, so it can use the new schema through any node at once.
                    self.announce_schema().await;
                    self.auth
                        .after_schema_change(self, session.user.as_deref(), c)
                        .await?;
                }
                Ok(Outcome::new(match change {
                    Some(change) => ResultBody::SchemaChange(change),
                    None => ResultBody::Void,
                }))
            }
        }
    }

    /// Logs and applies mutations on this node, resolving once they may be acknowledged;
    /// secondary indexes of the tables they touch are kept consistent. This is what a
    /// replica does with a write, and how node-local tables are written.
    pub async fn apply_local(&self, mutations: Vec<Mutation>) -> CqlResult<()> {
        if mutations.is_empty() {
            return Ok(());
        }
        index::apply_indexed(self, mutations).await
    }

    /// Logs and applies mutations as they are, without index maintenance.
    pub(crate) async fn apply_raw(&self, mutations: Vec<Mutation>) -> CqlResult<()> {
        if mutations.is_empty() {
            return Ok(());
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        let delay = self
            .engine
            .apply_deferred(
                mutations,
                Box::new(move |r| {
                    let _ = tx.send(r);
                }),
            )
            .map_err(engine_error)?;
        // Back-pressure when flushing falls behind, without blocking a runtime worker:
        // other requests on this thread keep going meanwhile.
        match delay {
            shoal_engine::WriteDelay::None => {}
            // The timer wheel rounds up to a millisecond: short delays are slept in place.
            shoal_engine::WriteDelay::Sleep(d) if d < std::time::Duration::from_millis(1) => {
                std::thread::sleep(d)
            }
            shoal_engine::WriteDelay::Sleep(d) => tokio::time::sleep(d).await,
            shoal_engine::WriteDelay::WaitForFlush => {
                let engine = self.engine.clone();
                let _ = tokio::task::spawn_blocking(move || engine.wait_for_flush()).await;
            }
        }
        match rx.await {
            Ok(r) => r.map_err(engine_error),
            Err(_) => Err(CqlError::server("storage engine dropped the write")),
        }
    }

    /// Installs a new schema snapshot after persisting it, and announces the change.
    pub(crate) fn commit_schema(&self, new: Schema, change: &SchemaChange) -> CqlResult<()> {
        self.commit_local(new, change)
    }

    pub(crate) fn ddl_guard(&self) -> std::sync::MutexGuard<'_, ()> {
        self.ddl_lock.lock().expect("ddl lock")
    }
}

fn mutations_tables(children: &[(Arc<Prepared>, Values)]) -> Vec<(Option<String>, &Statement)> {
    children
        .iter()
        .map(|(p, _)| (p.keyspace.clone(), &p.parsed.statement))
        .collect()
}

/// Merges mutations of the same partition so a batch applies atomically per partition.
pub(crate) fn merge_mutations(mutations: Vec<Mutation>) -> Vec<Mutation> {
    let mut out: Vec<Mutation> = Vec::with_capacity(mutations.len());
    for m in mutations {
        if let Some(existing) = out
            .iter_mut()
            .find(|e| e.table == m.table && e.key == m.key)
        {
            modify::merge_into(existing, m);
        } else {
            out.push(m);
        }
    }
    out
}

fn prepared_body(p: &Prepared) -> ResultBody {
    ResultBody::Prepared {
        id: p.id.clone(),
        result_metadata_id: result_metadata_id(&p.result),
        bind_columns: p.bind_specs.clone(),
        pk_indexes: p.pk_indexes.clone(),
        result: p.result.clone(),
    }
}

/// MD5(keyspace ‖ query), or MD5(query) without a keyspace, as Cassandra computes it, so
/// every node hands out the same id for the same statement.
pub fn prepared_id(keyspace: Option<&str>, query: &str) -> Bytes {
    use md5::{Digest, Md5};
    let mut h = Md5::new();
    if let Some(ks) = keyspace {
        h.update(ks.as_bytes());
    }
    h.update(query.as_bytes());
    Bytes::copy_from_slice(&h.finalize())
}

fn result_metadata_id(m: &RowsMetadata) -> Bytes {
    use md5::{Digest, Md5};
    let mut h = Md5::new();
    for c in &m.columns {
        h.update(c.keyspace.as_bytes());
        h.update([0]);
        h.update(c.table.as_bytes());
        h.update([0]);
        h.update(c.name.as_bytes());
        h.update([0]);
        h.update(format!("{:?}", c.ty).as_bytes());
    }
    Bytes::copy_from_slice(&h.finalize())
}

/// The schema with the built-in keyspaces added to the user's.
pub fn build_schema(user: Vec<KeyspaceDef>) -> Schema {
    let version = crate::schema::persist::schema_digest(user.iter());
    let state = crate::schema::merge::SchemaState::from_keyspaces(user.iter());
    let mut keyspaces = std::collections::BTreeMap::new();
    for ks in crate::schema::system::system_keyspaces() {
        keyspaces.insert(ks.name.clone(), Arc::new(ks));
    }
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

/// Tables of system keyspaces (and hidden index tables) live on each node on its own: they
/// are never routed to replicas.
pub(crate) fn is_node_local(schema: &Schema, table: shoal_engine::TableId) -> bool {
    match schema.table_by_engine_id(table) {
        Some(t) => schema.keyspace(&t.keyspace).is_none_or(|k| k.is_system),
        None => true,
    }
}

/// Polls a future that is known to complete without waiting (reads of node-local tables)
/// from synchronous code.
pub(crate) fn complete_now<F: std::future::Future>(f: F) -> Option<F::Output> {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => Some(v),
        std::task::Poll::Pending => None,
    }
}

/// COUNTER for writes to counter tables (drivers never retry those), else SIMPLE.
fn simple_write_type(schema: &Schema, mutations: &[Mutation]) -> WriteType {
    let counter = mutations.iter().any(|m| {
        schema
            .table_by_engine_id(m.table)
            .is_some_and(|t| t.is_counter)
    });
    if counter {
        WriteType::Counter
    } else {
        WriteType::Simple
    }
}

pub(crate) fn engine_error(e: EngineError) -> CqlError {
    match e {
        EngineError::TombstoneOverwhelming { .. } => CqlError::ReadFailure {
            message: e.to_string(),
            consistency: crate::error::Consistency::One,
            received: 0,
            block_for: 1,
            failures: Vec::new(),
            data_present: false,
        },
        other => CqlError::server(other.to_string()),
    }
}

pub(crate) fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

pub(crate) fn now_seconds() -> i32 {
    (now_micros() / 1_000_000) as i32
}

pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
