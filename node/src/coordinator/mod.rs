//! The cluster coordinator: any node accepts any request and forwards it to the replicas
//! of the data at the client's consistency level (Cassandra's `StorageProxy`).
//!
//! - Writes go to every alive natural replica (this node applies its share in-process);
//!   the answer waits for the consistency level's acks; replicas that are down or do not
//!   answer get a hint stored here ([`crate::hints`]), replayed when they come back.
//! - Reads ask the closest replica for data and the others needed for the consistency level
//!   for a digest; on a mismatch every contacted replica sends data, the coordinator
//!   reconciles with the engine's own merge and repairs stale replicas before answering.
//! - Range reads walk the ring's token ranges in order, one replica set at a time.
//! - TRUNCATE goes to every node and needs all of them up.
//!
//! A replica's side of these messages is [`ReplicaHandler`].

pub mod consistency;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use shoal_cql::coordinator::{BoxFuture, Coordinator, WriteOptions};
use shoal_cql::error::{Consistency, CqlError, CqlResult, WriteType};
use shoal_cql::executor::Executor;
use shoal_cql::schema::{KeyspaceDef, Schema};
use shoal_engine::{
    Mutation, PartitionPosition, PartitionRange, ReadCommand, ReadResult, TableId, live_counts,
    partition_to_mutation, reconcile_results,
};
use shoal_gossip::internode::{Frame, MessageType, flags};
use shoal_gossip::replication::ReplicationStrategy;
use shoal_gossip::ring::HostId;
use tokio::sync::{Notify, mpsc, watch};
use tracing::{debug, warn};

use crate::hints::{Hint, HintStore};
use crate::messaging::{HandlerFuture, InboundHandler, Messaging};
use crate::topology::{Topology, TopologyCell};
use crate::wire::{self, ReadKind, ReadReply};
use consistency::{AckTracker, Candidate, Requirement, check_available, read_targets, requirement};

/// Timeouts and hint settings (cassandra.yaml keys of the same names).
#[derive(Clone, Debug)]
pub struct CoordinatorConfig {
    pub write_timeout: Duration,
    pub read_timeout: Duration,
    pub range_timeout: Duration,
    pub truncate_timeout: Duration,
    pub hinted_handoff_enabled: bool,
    pub max_hint_window: Duration,
    /// How often hints are offered to hosts that are up, besides topology changes.
    pub hint_replay_interval: Duration,
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        CoordinatorConfig {
            write_timeout: Duration::from_millis(2000),
            read_timeout: Duration::from_millis(5000),
            range_timeout: Duration::from_millis(10_000),
            truncate_timeout: Duration::from_millis(60_000),
            hinted_handoff_enabled: true,
            max_hint_window: Duration::from_millis(10_800_000),
            hint_replay_interval: Duration::from_secs(10),
        }
    }
}

/// Short-read protection re-reads with doubled limits at most this many times.
const SHORT_READ_RETRIES: usize = 4;

/// A keyspace's parsed replication and the definition it was parsed from.
type CachedStrategy = (Arc<KeyspaceDef>, Arc<ReplicationStrategy>);

/// The cluster-aware [`Coordinator`].
pub struct ClusterCoordinator {
    /// This coordinator, for the tasks a write spawns (the trait hands out `&self`).
    me: Weak<ClusterCoordinator>,
    /// Weak: the executor owns this coordinator (`set_coordinator`).
    executor: Weak<Executor>,
    messaging: Messaging,
    topology: Arc<TopologyCell>,
    hints: Option<Arc<HintStore>>,
    config: CoordinatorConfig,
    /// Parsed replication per keyspace, keyed by the keyspace definition it came from (a
    /// new schema snapshot brings a new `Arc`, which invalidates the entry).
    strategies: Mutex<HashMap<String, CachedStrategy>>,
    /// When each host was first seen down (hints stop after max_hint_window).
    down_since: Mutex<HashMap<HostId, Instant>>,
    replaying: Mutex<HashSet<HostId>>,
    replay_wakeup: Notify,
    /// Told the pending hint count whenever it changes (the `shoal_hints_pending` gauge).
    on_pending: std::sync::OnceLock<PendingObserver>,
}

/// Receives the number of hints waiting for delivery.
pub type PendingObserver = Arc<dyn Fn(u64) + Send + Sync>;

/// What one replica said about a write.
struct WriteAck {
    group: usize,
    dc: String,
    /// Acked by the replica, or (for ANY) hinted.
    ok: bool,
}

impl ClusterCoordinator {
    pub fn new(
        executor: &Arc<Executor>,
        messaging: Messaging,
        topology: Arc<TopologyCell>,
        hints: Option<Arc<HintStore>>,
        config: CoordinatorConfig,
    ) -> Arc<ClusterCoordinator> {
        Arc::new_cyclic(|me| ClusterCoordinator {
            me: me.clone(),
            executor: Arc::downgrade(executor),
            messaging,
            topology,
            hints,
            config,
            strategies: Mutex::new(HashMap::new()),
            down_since: Mutex::new(HashMap::new()),
            replaying: Mutex::new(HashSet::new()),
            replay_wakeup: Notify::new(),
            on_pending: std::sync::OnceLock::new(),
        })
    }

    fn arc(&self) -> CqlResult<Arc<ClusterCoordinator>> {
        self.me
            .upgrade()
            .ok_or_else(|| CqlError::server("coordinator is shutting down"))
    }

    fn executor(&self) -> CqlResult<Arc<Executor>> {
        self.executor
            .upgrade()
            .ok_or_else(|| CqlError::server("node is shutting down"))
    }

    /// Hints waiting for delivery (the `shoal_hints_pending` gauge).
    pub fn hints_pending(&self) -> u64 {
        self.hints.as_ref().map_or(0, |h| h.total())
    }

    /// Publishes the pending hint count to the observer, if any.
    fn publish_pending(&self) {
        if let Some(f) = self.on_pending.get() {
            f(self.hints_pending());
        }
    }

    /// Membership calls this after publishing a new topology: hosts that came back get
    /// their hints now rather than at the next periodic check.
    pub fn topology_changed(&self) {
        self.replay_wakeup.notify_one();
    }

    fn strategy(&self, schema: &Schema, table: TableId) -> CqlResult<Arc<ReplicationStrategy>> {
        let t = schema
            .table_by_engine_id(table)
            .ok_or_else(|| CqlError::invalid("unknown table"))?;
        let ks = schema.keyspace(&t.keyspace).ok_or_else(|| {
            CqlError::invalid(format!("Keyspace '{}' does not exist", t.keyspace))
        })?;
        let mut cache = self.strategies.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((def, s)) = cache.get(&ks.name)
            && Arc::ptr_eq(def, ks)
        {
            return Ok(s.clone());
        }
        let topo = self.topology.get();
        let dcs: HashSet<&str> = topo
            .metadata
            .ring()
            .hosts()
            .map(|(_, h)| h.dc.as_str())
            .collect();
        let s = Arc::new(
            ReplicationStrategy::from_options(&ks.replication, dcs)
                .map_err(|e| CqlError::server(format!("keyspace {}: {e}", ks.name)))?,
        );
        cache.insert(ks.name.clone(), (ks.clone(), s.clone()));
        Ok(s)
    }

    fn is_counter(schema: &Schema, table: TableId) -> bool {
        schema
            .table_by_engine_id(table)
            .is_some_and(|t| t.is_counter)
    }

    fn should_hint(&self, host: &HostId) -> bool {
        self.config.hinted_handoff_enabled
            && self.hints.is_some()
            && self
                .down_since
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(host)
                .is_none_or(|t| t.elapsed() < self.config.max_hint_window)
    }

    /// Stores a hint; true if it was written.
    fn hint(&self, host: HostId, mutations: &[Mutation]) -> bool {
        let Some(store) = &self.hints else {
            return false;
        };
        let hint = Hint {
            created_ms: now_ms(),
            mutations: mutations.to_vec(),
        };
        match store.store(host, &hint) {
            Ok(()) => {
                // The gauge must count a hint as soon as it exists, not at the next replay
                // round: "no hints pending" is what tells an operator (and the tests) that
                // a returning replica has everything.
                self.publish_pending();
                true
            }
            Err(e) => {
                warn!(%host, error = %e, "could not store a hint");
                false
            }
        }
    }

    // ---------------------------------------------------------------- writes

    async fn write_impl(
        self: Arc<Self>,
        schema: Arc<Schema>,
        mutations: Vec<Mutation>,
        options: WriteOptions,
    ) -> CqlResult<()> {
        let topo = self.topology.get();
        let local = topo.local();
        let hosts = topo.metadata.ring().hosts().count();
        let cl = options.consistency;
        // Fast path (single node, RF=1): nothing to send or wait for, no allocation.
        let mut all_local = true;
        for m in &mutations {
            let s = self.strategy(&schema, m.table)?;
            let req = requirement(cl, &s, topo.local_dc(), hosts, false)?;
            let reps = topo.metadata.natural_replicas(&s, m.token);
            if !(reps.len() == 1 && reps[0] == local && req.block_for() <= 1) {
                all_local = false;
                break;
            }
        }
        if all_local {
            return self.executor()?.apply_local(mutations).await;
        }

        // Group by replica set: a batch to one partition is one message per replica.
        let mut groups: Vec<(Arc<[HostId]>, Requirement, Vec<Mutation>)> = Vec::new();
        let mut counter = options.write_type == WriteType::Counter;
        for m in mutations {
            counter |= Self::is_counter(&schema, m.table);
            let s = self.strategy(&schema, m.table)?;
            let req = requirement(cl, &s, topo.local_dc(), hosts, false)?;
            let reps = topo.metadata.natural_replicas(&s, m.token);
            match groups.iter_mut().find(|(r, q, _)| *r == reps && *q == req) {
                Some(g) => g.2.push(m),
                None => groups.push((reps, req, vec![m])),
            }
        }
        // Unavailable is decided before anything is sent, as Cassandra does.
        for (reps, req, _) in &groups {
            if reps.is_empty() {
                return Err(CqlError::Unavailable {
                    message: "no replica owns the token".into(),
                    consistency: cl,
                    required: req.block_for() as i32,
                    alive: 0,
                });
            }
            let cands = candidates(&topo, reps);
            if let Some(e) = check_available(cl, req, &cands, topo.local_dc()) {
                return Err(e);
            }
        }

        let (tx, mut rx) = mpsc::unbounded_channel::<WriteAck>();
        let mut trackers: Vec<AckTracker> = Vec::with_capacity(groups.len());
        let mut outstanding = 0usize;
        for (gi, (reps, req, muts)) in groups.into_iter().enumerate() {
            trackers.push(AckTracker::new(req, topo.local_dc()));
            let muts = Arc::new(muts);
            let payload = Arc::new(wire::encode_mutation_request(&muts));
            for host in reps.iter().copied() {
                let dc = topo.host(&host).map_or(String::new(), |h| h.dc.clone());
                if !topo.is_alive(&host) {
                    // Never sent, so a hint delivers even a counter delta exactly once (a
                    // replica that timed out may have applied it: those are not hinted).
                    let hinted = self.should_hint(&host) && self.hint(host, &muts);
                    // A hint satisfies ANY and nothing else.
                    let _ = tx.send(WriteAck {
                        group: gi,
                        dc,
                        ok: hinted && cl == Consistency::Any,
                    });
                    outstanding += 1;
                    continue;
                }
                outstanding += 1;
                let tx = tx.clone();
                let this = self.clone();
                let muts = muts.clone();
                let payload = payload.clone();
                let addr = topo.address(&host);
                tokio::spawn(async move {
                    let ok = if host == this.topology.get().local() {
                        match this.executor() {
                            Ok(ex) => ex.apply_local(muts.to_vec()).await.is_ok(),
                            Err(_) => false,
                        }
                    } else {
                        match addr {
                            Some(addr) => this.send_mutation(addr, payload.to_vec()).await,
                            None => false,
                        }
                    };
                    // A replica that failed or timed out gets a hint, even after the
                    // client was answered.
                    let hinted =
                        !ok && !counter && this.should_hint(&host) && this.hint(host, &muts);
                    let _ = tx.send(WriteAck {
                        group: gi,
                        dc,
                        ok: ok || (hinted && cl == Consistency::Any),
                    });
                });
            }
        }
        drop(tx);
        let deadline = tokio::time::Instant::now() + self.config.write_timeout;
        while !trackers.iter().all(|t| t.done()) && outstanding > 0 {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(a)) => {
                    outstanding -= 1;
                    if a.ok {
                        trackers[a.group].ack(&a.dc);
                    }
                }
                Ok(None) | Err(_) => break,
            }
        }
        match trackers.iter().find(|t| !t.done()) {
            None => Ok(()),
            Some(t) => Err(CqlError::WriteTimeout {
                message: format!(
                    "Operation timed out - received only {} responses.",
                    t.received()
                ),
                consistency: cl,
                received: t.received() as i32,
                block_for: t.block_for() as i32,
                write_type: options.write_type,
                contentions: None,
            }),
        }
    }

    async fn send_mutation(&self, addr: SocketAddr, payload: Vec<u8>) -> bool {
        match self
            .messaging
            .request(
                addr,
                MessageType::MutationRequest,
                payload,
                self.config.write_timeout,
            )
            .await
        {
            Ok(f) => wire::decode_ack(&f.payload).is_ok(),
            Err(e) => {
                debug!(%addr, error = %e, "mutation not acknowledged");
                false
            }
        }
    }

    // ---------------------------------------------------------------- reads

    async fn read_impl(
        self: Arc<Self>,
        schema: Arc<Schema>,
        cmd: ReadCommand,
        cl: Consistency,
    ) -> CqlResult<ReadResult> {
        let topo = self.topology.get();
        let s = self.strategy(&schema, cmd.table)?;
        let hosts = topo.metadata.ring().hosts().count();
        let req = requirement(cl, &s, topo.local_dc(), hosts, true)?;
        let counter = Self::is_counter(&schema, cmd.table);
        match &cmd.partitions {
            PartitionRange::Single { token, .. } => {
                let reps = topo.metadata.natural_replicas(&s, *token);
                self.read_replicas(
                    &topo,
                    &reps,
                    cmd,
                    cl,
                    &req,
                    counter,
                    self.config.read_timeout,
                )
                .await
            }
            PartitionRange::Range { .. } => {
                self.range_read(&topo, &s, cmd, cl, &req, counter).await
            }
        }
    }

    /// One read at `cl` against one replica set.
    #[allow(clippy::too_many_arguments)]
    async fn read_replicas(
        &self,
        topo: &Topology,
        reps: &[HostId],
        cmd: ReadCommand,
        cl: Consistency,
        req: &Requirement,
        counter: bool,
        timeout: Duration,
    ) -> CqlResult<ReadResult> {
        let local = topo.local();
        let cands = candidates(topo, reps);
        if let Some(e) = check_available(cl, req, &cands, topo.local_dc()) {
            return Err(e);
        }
        let targets = read_targets(req, &cands, local, topo.local_dc());
        if targets.is_empty() {
            // Nothing to ask (an empty ring or a replication factor of 0).
            return Ok(ReadResult::default());
        }
        if targets.len() == 1 && targets[0] == local {
            return self.executor()?.read_local(&cmd);
        }
        let block_for = req.block_for();
        let deadline = tokio::time::Instant::now() + timeout;
        let read_timeout = |received: usize, data_present: bool| CqlError::ReadTimeout {
            message: format!("Operation timed out - received only {received} responses."),
            consistency: cl,
            received: received as i32,
            block_for: block_for as i32,
            data_present,
        };

        if counter {
            // Counter cells hold a replica's own running sum of deltas; merging replicas
            // would add those sums together. Every replica gets every delta (a replica that
            // was down gets it from a hint), so the freshest single answer is the best one
            // and nothing is repaired.
            let replies = self
                .gather(topo, &targets, ReadKind::Data, &cmd, deadline)
                .await;
            let mut best: Option<ReadResult> = None;
            let mut n = 0;
            for r in replies.into_iter().flatten() {
                n += 1;
                if let ReadReply::Data(d) = r
                    && best
                        .as_ref()
                        .is_none_or(|b| max_timestamp(&d) > max_timestamp(b))
                {
                    best = Some(d);
                }
            }
            return match best {
                Some(b) if n == targets.len() => Ok(b),
                b => Err(read_timeout(n, b.is_some())),
            };
        }

        let mut raw = cmd.clone();
        raw.include_tombstones = true;
        for attempt in 0..=SHORT_READ_RETRIES {
            // One data read from the closest replica, digests from the others.
            let first = self.gather(topo, &targets[..1], ReadKind::Data, &raw, deadline);
            let rest = self.gather(topo, &targets[1..], ReadKind::Digest, &raw, deadline);
            let (first, rest) = tokio::join!(first, rest);
            let received = first
                .iter()
                .chain(rest.iter())
                .filter(|r| r.is_some())
                .count();
            let data = match first.into_iter().next().flatten() {
                Some(ReadReply::Data(d)) => d,
                _ => return Err(read_timeout(received, false)),
            };
            if received < targets.len() {
                return Err(read_timeout(received, true));
            }
            let want = wire::digest(&data);
            let matched = rest
                .iter()
                .all(|r| matches!(r, Some(ReadReply::Digest(d)) if *d == want));
            if matched {
                return Ok(reconcile_results(&cmd, [data]));
            }
            // Mismatch: full data from every contacted replica, then merge and repair.
            let full = self
                .gather(topo, &targets, ReadKind::Data, &raw, deadline)
                .await;
            let mut datas = Vec::with_capacity(full.len());
            for r in full {
                match r {
                    Some(ReadReply::Data(d)) => datas.push(d),
                    _ => return Err(read_timeout(datas.len(), true)),
                }
            }
            let merged = reconcile_results(&raw, datas.iter().cloned());
            self.repair(topo, &targets, &datas, &merged, &raw, deadline)
                .await
                .map_err(|_| read_timeout(targets.len(), true))?;
            let answer = reconcile_results(&cmd, [merged]);
            // Short reads: a replica that stopped at its limit may hold rows that would
            // replace ones the merge shadowed; ask again for more.
            let (rows, parts) = live_counts(&answer, cmd.now);
            let short = rows < cmd.row_limit && parts < cmd.partition_limit;
            let some_full = datas.iter().any(|d| {
                let (r, p) = live_counts(d, raw.now);
                r >= raw.row_limit || p >= raw.partition_limit
            });
            if !(short && some_full) || attempt == SHORT_READ_RETRIES {
                return Ok(answer);
            }
            raw.row_limit = raw.row_limit.saturating_mul(2);
            raw.partition_limit = raw.partition_limit.saturating_mul(2);
            raw.per_partition_limit = raw.per_partition_limit.saturating_mul(2);
        }
        unreachable_loop()
    }

    /// Sends merged data to the replicas whose answer differed, and waits for them
    /// (Cassandra 4's blocking read repair: a read at QUORUM then another at QUORUM
    /// never go back in time).
    async fn repair(
        &self,
        topo: &Topology,
        targets: &[HostId],
        datas: &[ReadResult],
        merged: &ReadResult,
        raw: &ReadCommand,
        deadline: tokio::time::Instant,
    ) -> Result<(), ()> {
        let want = wire::digest(merged);
        let muts: Vec<Mutation> = merged
            .partitions
            .iter()
            .cloned()
            .map(|p| partition_to_mutation(raw.table, p))
            .collect();
        if muts.is_empty() {
            return Ok(());
        }
        let payload = wire::encode_mutation_request(&muts);
        let mut jobs = Vec::new();
        for (host, d) in targets.iter().zip(datas) {
            if wire::digest(d) == want {
                continue;
            }
            let host = *host;
            let payload = payload.clone();
            let muts = muts.clone();
            let addr = topo.address(&host);
            let local = host == topo.local();
            jobs.push(async move {
                if local {
                    match self.executor() {
                        Ok(ex) => ex.apply_local(muts).await.is_ok(),
                        Err(_) => false,
                    }
                } else if let Some(addr) = addr {
                    self.send_mutation(addr, payload).await
                } else {
                    false
                }
            });
        }
        let all = futures_join_all(jobs);
        match tokio::time::timeout_at(deadline, all).await {
            Ok(v) if v.iter().all(|ok| *ok) => Ok(()),
            _ => Err(()),
        }
    }

    /// Asks each of `targets` for `kind` of `cmd`; `None` for those that failed or did
    /// not answer by `deadline`. This node answers itself in-process.
    async fn gather(
        &self,
        topo: &Topology,
        targets: &[HostId],
        kind: ReadKind,
        cmd: &ReadCommand,
        deadline: tokio::time::Instant,
    ) -> Vec<Option<ReadReply>> {
        let msg_type = match cmd.partitions {
            PartitionRange::Single { .. } => MessageType::ReadRequest,
            PartitionRange::Range { .. } => MessageType::RangeReadRequest,
        };
        let payload = wire::encode_read_request(kind, cmd);
        let jobs = targets.iter().map(|host| {
            let local = *host == topo.local();
            let addr = topo.address(host);
            let payload = payload.clone();
            async move {
                if local {
                    let ex = self.executor().ok()?;
                    return local_read(&ex, kind, cmd).ok();
                }
                let timeout = deadline.saturating_duration_since(tokio::time::Instant::now());
                let frame = self
                    .messaging
                    .request(addr?, msg_type, payload, timeout)
                    .await
                    .map_err(|e| debug!(error = %e, "read request failed"))
                    .ok()?;
                wire::decode_read_reply(&frame.payload)
                    .map_err(|e| warn!(error = %e, "bad read reply"))
                    .ok()
            }
        });
        futures_join_all(jobs.collect()).await
    }

    /// Range reads: the ring's ranges in token order, consecutive ranges with the same
    /// replicas read together, until the command's limits are met. Results come back in
    /// (token, key) order as one engine's would, which paging relies on.
    async fn range_read(
        &self,
        topo: &Topology,
        s: &ReplicationStrategy,
        cmd: ReadCommand,
        cl: Consistency,
        req: &Requirement,
        counter: bool,
    ) -> CqlResult<ReadResult> {
        let local = topo.local();
        let ring = topo.metadata.ring();
        if ring.hosts().count() <= 1 && ring.host(&local).is_some() {
            // One node owns everything: one local read (after the availability check).
            let reps = topo.metadata.natural_replicas(s, i64::MIN);
            return self
                .read_replicas(
                    topo,
                    &reps,
                    cmd,
                    cl,
                    req,
                    counter,
                    self.config.range_timeout,
                )
                .await;
        }
        let PartitionRange::Range { start, end } = &cmd.partitions else {
            return Err(CqlError::server("range read of a single partition"));
        };
        let mut out = ReadResult::default();
        let mut rows_left = cmd.row_limit;
        let mut parts_left = cmd.partition_limit;
        let mut first = true;
        let deadline = Instant::now() + self.config.range_timeout;
        for seg in segments(topo, s) {
            let sub_start = later_start(start, &seg.start);
            let sub_end = earlier_end(end, &seg.end);
            if !non_empty(&sub_start, &sub_end) {
                continue;
            }
            let mut sub = cmd.clone();
            sub.partitions = PartitionRange::Range {
                start: sub_start,
                end: sub_end,
            };
            sub.row_limit = rows_left;
            sub.partition_limit = parts_left;
            if !first {
                // Paging resumes inside the first partition only.
                sub.start_after_row = None;
            }
            first = false;
            let timeout = deadline.saturating_duration_since(Instant::now());
            let r = self
                .read_replicas(topo, &seg.replicas, sub, cl, req, counter, timeout)
                .await?;
            let (rows, parts) = live_counts(&r, cmd.now);
            out.tombstones_scanned += r.tombstones_scanned;
            out.warnings.extend(r.warnings);
            out.partitions.extend(r.partitions);
            rows_left = rows_left.saturating_sub(rows);
            parts_left = parts_left.saturating_sub(parts);
            if rows_left == 0 || parts_left == 0 {
                break;
            }
        }
        Ok(out)
    }

    // ---------------------------------------------------------------- truncate

    async fn truncate_impl(self: Arc<Self>, table: TableId) -> CqlResult<()> {
        let topo = self.topology.get();
        let hosts: Vec<HostId> = topo.metadata.ring().hosts().map(|(h, _)| *h).collect();
        let alive = hosts.iter().filter(|h| topo.is_alive(h)).count();
        if alive < hosts.len() {
            return Err(CqlError::Unavailable {
                message: "Cannot achieve consistency level ALL".into(),
                consistency: Consistency::All,
                required: hosts.len() as i32,
                alive: alive as i32,
            });
        }
        let payload = wire::encode_truncate_request(table);
        let jobs = hosts.iter().map(|h| {
            let addr = topo.address(h);
            let local = *h == topo.local();
            let payload = payload.clone();
            let this = &self;
            async move {
                if local {
                    return this.executor()?.truncate_local(table);
                }
                let addr = addr.ok_or_else(|| CqlError::Truncate("no address".into()))?;
                this.messaging
                    .request(
                        addr,
                        MessageType::TruncateRequest,
                        payload,
                        this.config.truncate_timeout,
                    )
                    .await
                    .map_err(|e| CqlError::Truncate(e.to_string()))
                    .and_then(|f| {
                        wire::decode_ack(&f.payload).map_err(|e| CqlError::Truncate(e.to_string()))
                    })
            }
        });
        for r in futures_join_all(jobs.collect()).await {
            r?;
        }
        Ok(())
    }

    // ---------------------------------------------------------------- hint replay

    /// Delivers `host`'s hints oldest first; a file is deleted once every hint in it was
    /// acknowledged (or had expired). Stops at the first failure: the host is not ready.
    pub async fn replay_hints(&self, host: HostId) -> Result<usize, String> {
        let Some(store) = self.hints.clone() else {
            return Ok(0);
        };
        {
            let mut r = self.replaying.lock().unwrap_or_else(|e| e.into_inner());
            if !r.insert(host) {
                return Ok(0);
            }
        }
        let result = self.replay_inner(&store, host).await;
        self.replaying
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&host);
        self.publish_pending();
        result
    }

    async fn replay_inner(&self, store: &HintStore, host: HostId) -> Result<usize, String> {
        let topo = self.topology.get();
        let addr = topo.address(&host).ok_or("unknown host")?;
        let window = self.config.max_hint_window.as_millis() as i64;
        let mut delivered = 0;
        for f in store.files_for_replay(host) {
            let decoded = match store.read(&f) {
                Ok(d) => d,
                Err(e) => {
                    warn!(error = %e, "dropping an unreadable hints file");
                    store.delete(&f).map_err(|e| e.to_string())?;
                    continue;
                }
            };
            for h in decoded.hints {
                if now_ms().saturating_sub(h.created_ms) > window {
                    continue;
                }
                let payload = wire::encode_hint_request(h.created_ms, &h.mutations);
                let f = self
                    .messaging
                    .request(
                        addr,
                        MessageType::HintRequest,
                        payload,
                        self.config.write_timeout,
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                wire::decode_ack(&f.payload).map_err(|e| e.to_string())?;
                delivered += 1;
            }
            store.delete(&f).map_err(|e| e.to_string())?;
        }
        Ok(delivered)
    }

    /// Watches liveness and replays hints to hosts that are up: on every
    /// [`ClusterCoordinator::topology_changed`] and every `hint_replay_interval`.
    pub fn spawn_hint_replay(
        self: &Arc<Self>,
        mut stop: watch::Receiver<bool>,
        on_pending: Option<PendingObserver>,
    ) {
        if let Some(f) = on_pending {
            let _ = self.on_pending.set(f);
        }
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = this.replay_wakeup.notified() => {}
                    _ = tokio::time::sleep(this.config.hint_replay_interval) => {}
                    _ = stop.changed() => if *stop.borrow() { return },
                }
                let topo = this.topology.get();
                {
                    let mut down = this.down_since.lock().unwrap_or_else(|e| e.into_inner());
                    for (h, _) in topo.metadata.ring().hosts() {
                        if topo.is_alive(h) {
                            down.remove(h);
                        } else {
                            down.entry(*h).or_insert_with(Instant::now);
                        }
                    }
                }
                if let Some(store) = &this.hints {
                    for host in store.hosts() {
                        if topo.is_alive(&host) && host != topo.local() {
                            match this.replay_hints(host).await {
                                Ok(n) if n > 0 => debug!(%host, n, "hints delivered"),
                                Ok(_) => {}
                                Err(e) => debug!(%host, error = %e, "hint replay paused"),
                            }
                        }
                    }
                }
                this.publish_pending();
            }
        });
    }
}

impl Coordinator for ClusterCoordinator {
    fn write(
        &self,
        schema: Arc<Schema>,
        mutations: Vec<Mutation>,
        options: WriteOptions,
    ) -> BoxFuture<'_, CqlResult<()>> {
        Box::pin(async move { self.arc()?.write_impl(schema, mutations, options).await })
    }

    fn read(
        &self,
        schema: Arc<Schema>,
        cmd: ReadCommand,
        consistency: Consistency,
    ) -> BoxFuture<'_, CqlResult<ReadResult>> {
        Box::pin(async move { self.arc()?.read_impl(schema, cmd, consistency).await })
    }

    fn truncate(&self, _schema: Arc<Schema>, table: TableId) -> BoxFuture<'_, CqlResult<()>> {
        Box::pin(async move { self.arc()?.truncate_impl(table).await })
    }
}

fn unreachable_loop() -> CqlResult<ReadResult> {
    Err(CqlError::server("short-read protection exhausted"))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn candidates<'a>(topo: &'a Topology, reps: &[HostId]) -> Vec<Candidate<'a>> {
    reps.iter()
        .map(|h| Candidate {
            host: *h,
            dc: topo.host(h).map_or("", |i| i.dc.as_str()),
            alive: topo.is_alive(h),
        })
        .collect()
}

fn max_timestamp(r: &ReadResult) -> i64 {
    r.partitions
        .iter()
        .flat_map(|p| p.rows.iter().chain(p.static_row.iter()))
        .flat_map(|row| row.cells.iter().map(|c| c.timestamp))
        .max()
        .unwrap_or(i64::MIN)
}

fn local_read(ex: &Executor, kind: ReadKind, cmd: &ReadCommand) -> CqlResult<ReadReply> {
    let r = ex.read_local(cmd)?;
    Ok(match kind {
        ReadKind::Data => ReadReply::Data(r),
        ReadKind::Digest => ReadReply::Digest(wire::digest(&r)),
    })
}

/// Runs futures concurrently on this task and collects their outputs in order.
async fn futures_join_all<F: std::future::Future>(futs: Vec<F>) -> Vec<F::Output> {
    let mut set: Vec<std::pin::Pin<Box<F>>> = futs.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = (0..set.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in set.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => out[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}

// ---------------------------------------------------------------- ring walking (pure)

/// A stretch of the ring with one replica set.
#[derive(Clone, Debug, PartialEq)]
pub struct Segment {
    pub start: Option<PartitionPosition>,
    pub end: Option<PartitionPosition>,
    pub replicas: Arc<[HostId]>,
}

/// The ring from the smallest token to the largest as stretches with one replica set
/// each: `[MIN, t0]`, `(t0, t1]`, ..., `(t_last, MAX]` (the first and last belong to the
/// first token's replicas), consecutive stretches with equal replicas merged.
pub fn segments(topo: &Topology, s: &ReplicationStrategy) -> Vec<Segment> {
    let toks = topo.metadata.ring().tokens();
    let mut out: Vec<Segment> = Vec::new();
    let mut push = |start: Option<PartitionPosition>,
                    end: Option<PartitionPosition>,
                    replicas: Arc<[HostId]>| {
        if let Some(last) = out.last_mut()
            && last.replicas == replicas
        {
            last.end = end;
            return;
        }
        out.push(Segment {
            start,
            end,
            replicas,
        });
    };
    let pos = |token: i64, inclusive: bool| PartitionPosition {
        token,
        key: None,
        inclusive,
    };
    let mut prev: Option<i64> = None;
    for (t, _) in toks {
        let reps = topo.metadata.natural_replicas(s, *t);
        push(prev.map(|p| pos(p, false)), Some(pos(*t, true)), reps);
        prev = Some(*t);
    }
    if let Some(p) = prev {
        let reps = topo.metadata.natural_replicas(s, i64::MIN);
        push(Some(pos(p, false)), None, reps);
    }
    out
}

/// A bound as a point between partitions, so bounds of both kinds compare: partitions
/// sit at `(token, 1, key, 1)`; a bound is placed just before or after them.
type Cut = (i64, u8, Bytes, u8);

fn start_cut(p: &PartitionPosition) -> Cut {
    match (&p.key, p.inclusive) {
        (None, true) => (p.token, 0, Bytes::new(), 0),
        (None, false) => (p.token, 2, Bytes::new(), 0),
        (Some(k), true) => (p.token, 1, k.clone(), 0),
        (Some(k), false) => (p.token, 1, k.clone(), 2),
    }
}

fn end_cut(p: &PartitionPosition) -> Cut {
    match (&p.key, p.inclusive) {
        (None, true) => (p.token, 2, Bytes::new(), 0),
        (None, false) => (p.token, 0, Bytes::new(), 0),
        (Some(k), true) => (p.token, 1, k.clone(), 2),
        (Some(k), false) => (p.token, 1, k.clone(), 0),
    }
}

fn later_start(
    a: &Option<PartitionPosition>,
    b: &Option<PartitionPosition>,
) -> Option<PartitionPosition> {
    match (a, b) {
        (None, x) | (x, None) => x.clone(),
        (Some(x), Some(y)) => Some(if start_cut(x) >= start_cut(y) { x } else { y }.clone()),
    }
}

fn earlier_end(
    a: &Option<PartitionPosition>,
    b: &Option<PartitionPosition>,
) -> Option<PartitionPosition> {
    match (a, b) {
        (None, x) | (x, None) => x.clone(),
        (Some(x), Some(y)) => Some(if end_cut(x) <= end_cut(y) { x } else { y }.clone()),
    }
}

fn non_empty(start: &Option<PartitionPosition>, end: &Option<PartitionPosition>) -> bool {
    match (start, end) {
        (Some(s), Some(e)) => start_cut(s) < end_cut(e),
        _ => true,
    }
}

// ---------------------------------------------------------------- replica side

/// Serves the data-path messages a coordinator sends to this node as a replica.
pub struct ReplicaHandler {
    executor: Arc<Executor>,
}

impl ReplicaHandler {
    pub fn new(executor: Arc<Executor>) -> Arc<ReplicaHandler> {
        Arc::new(ReplicaHandler { executor })
    }

    /// The message types this handler answers (for a dispatcher).
    pub const TYPES: [MessageType; 5] = [
        MessageType::MutationRequest,
        MessageType::ReadRequest,
        MessageType::RangeReadRequest,
        MessageType::HintRequest,
        MessageType::TruncateRequest,
    ];

    /// Answers one request frame.
    pub async fn serve(executor: Arc<Executor>, frame: Frame) -> Frame {
        let (resp_type, result) = match frame.msg_type {
            MessageType::MutationRequest => (
                MessageType::MutationResponse,
                match wire::decode_mutation_request(&frame.payload) {
                    Ok(m) => executor
                        .apply_local(m)
                        .await
                        .map(|()| wire::encode_ack())
                        .map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                },
            ),
            MessageType::HintRequest => (
                MessageType::HintResponse,
                match wire::decode_hint_request(&frame.payload) {
                    Ok((_, m)) => executor
                        .apply_local(m)
                        .await
                        .map(|()| wire::encode_ack())
                        .map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                },
            ),
            t @ (MessageType::ReadRequest | MessageType::RangeReadRequest) => (
                if t == MessageType::ReadRequest {
                    MessageType::ReadResponse
                } else {
                    MessageType::RangeReadResponse
                },
                match wire::decode_read_request(&frame.payload) {
                    Ok((kind, cmd)) => local_read(&executor, kind, &cmd)
                        .map(|r| wire::encode_read_reply(&r))
                        .map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                },
            ),
            MessageType::TruncateRequest => (
                MessageType::TruncateResponse,
                match wire::decode_truncate_request(&frame.payload) {
                    Ok(t) => {
                        let ex = executor.clone();
                        tokio::task::spawn_blocking(move || ex.truncate_local(t))
                            .await
                            .map_err(|e| e.to_string())
                            .and_then(|r| r.map_err(|e| e.to_string()))
                            .map(|()| wire::encode_ack())
                    }
                    Err(e) => Err(e.to_string()),
                },
            ),
            other => (other, Err(format!("unexpected message type {other:?}"))),
        };
        match result {
            Ok(payload) => Frame {
                msg_type: resp_type,
                flags: 0,
                request_id: frame.request_id,
                payload,
            },
            Err(msg) => Frame {
                msg_type: resp_type,
                flags: flags::FAILURE,
                request_id: frame.request_id,
                payload: msg.into_bytes(),
            },
        }
    }
}

impl InboundHandler for ReplicaHandler {
    fn handle(&self, _from: SocketAddr, frame: Frame) -> HandlerFuture {
        let ex = self.executor.clone();
        Box::pin(async move {
            if frame.flags & flags::ONE_WAY != 0 {
                return None;
            }
            Some(ReplicaHandler::serve(ex, frame).await)
        })
    }
}

impl CoordinatorConfig {
    /// The settings of a node's configuration.
    pub fn from_config(c: &crate::config::Config) -> CoordinatorConfig {
        CoordinatorConfig {
            write_timeout: Duration::from_millis(c.write_request_timeout_ms),
            read_timeout: Duration::from_millis(c.read_request_timeout_ms),
            range_timeout: Duration::from_millis(c.range_request_timeout_ms),
            truncate_timeout: Duration::from_millis(c.truncate_request_timeout_ms),
            hinted_handoff_enabled: c.hinted_handoff_enabled,
            max_hint_window: Duration::from_millis(c.max_hint_window_ms),
            ..CoordinatorConfig::default()
        }
    }
}

/// Wires the coordinator into a node: opens the hint store under `hints_dir`, routes the
/// executor's statement reads and writes through a [`ClusterCoordinator`], and starts hint
/// replay (publishing the pending count through `on_pending`, e.g. the
/// `shoal_hints_pending` gauge). The replica side ([`ReplicaHandler`]) must be the inbound
/// handler (or registered with the dispatcher) of `messaging` for
/// [`ReplicaHandler::TYPES`]. Membership calls [`ClusterCoordinator::topology_changed`]
/// after each `topology.set`.
pub fn install(
    executor: &Arc<Executor>,
    messaging: Messaging,
    topology: Arc<TopologyCell>,
    hints_dir: &std::path::Path,
    config: CoordinatorConfig,
    stop: watch::Receiver<bool>,
    on_pending: Option<Arc<dyn Fn(u64) + Send + Sync>>,
) -> Result<Arc<ClusterCoordinator>, crate::hints::HintError> {
    let hints = Arc::new(HintStore::open(hints_dir)?);
    let coord = ClusterCoordinator::new(executor, messaging, topology, Some(hints), config);
    executor.set_coordinator(coord.clone());
    coord.spawn_hint_replay(stop, on_pending);
    Ok(coord)
}
