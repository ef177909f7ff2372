//! Wiring: opens the engine and schema, starts internode messaging and gossip, the CQL
//! server and the admin endpoint, and drains cleanly on SIGTERM or `/drain`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use shoal_cql::executor::{Executor, NodeInfo, RELEASE_VERSION};
use shoal_cql::schema::persist::SchemaStore;
use shoal_cql::server::{self, ServerStats};
use shoal_engine::{Engine, EngineConfig};
use shoal_gossip::gossiper::LocalInfo;
use shoal_gossip::internode::{Frame, MessageType};
use shoal_gossip::ring::{HostId, HostInfo};
use shoal_gossip::state::{AppKey, Status, format_tokens};
use shoal_k8s::admin::{self, AdminState, NodeFacts};
use shoal_k8s::discovery::{self, DiscoveryConfig, DnsResolver, Seed};
use shoal_k8s::lifecycle::{Lifecycle, NodeState};
use shoal_k8s::metrics::Metrics;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::cluster::GossipService;
use crate::config::Config;
use crate::coordinator::{self, CoordinatorConfig, ReplicaHandler};
use crate::dispatch::{self, Dispatcher};
use crate::identity;
use crate::joining;
use crate::membership::{self, GossipView};
use crate::messaging::{HandlerFuture, InboundHandler, Messaging, MessagingConfig};
use crate::paxos;
use crate::schema_sync::{self, SchemaSyncConfig};
use crate::topology::{Topology, TopologyCell};

/// Knobs that are Shoal's own (not cassandra.yaml keys).
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Between readiness going false and CQL closing: time for kube-proxy / EndpointSlices
    /// to stop sending new clients here (kubernetes.md §3 rule 9).
    pub drain_delay: Duration,
    /// Longest wait for in-flight CQL requests once the listener is closed.
    pub in_flight_timeout: Duration,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            drain_delay: Duration::from_secs(5),
            in_flight_timeout: Duration::from_secs(10),
        }
    }
}

/// Full class name of a snitch given by its short or full name.
fn snitch_class(name: &str) -> String {
    if name.contains('.') {
        name.to_string()
    } else {
        format!("org.apache.cassandra.locator.{name}")
    }
}

/// Runs a node until `shutdown` turns true, with default [`RunOptions`].
pub async fn run(config: Config, shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
    run_with(config, shutdown, RunOptions::default()).await
}

/// Runs a node until `shutdown` turns true (SIGTERM). A `/drain` request drains without
/// exiting, as `nodetool drain` does; the process then waits for the signal.
pub async fn run_with(
    config: Config,
    mut shutdown: watch::Receiver<bool>,
    options: RunOptions,
) -> anyhow::Result<()> {
    let started = Instant::now();
    if !matches!(
        config.authenticator.as_str(),
        "AllowAllAuthenticator" | "PasswordAuthenticator"
    ) {
        anyhow::bail!(
            "authenticator {} is not supported: use AllowAllAuthenticator or PasswordAuthenticator",
            config.authenticator
        );
    }
    if config.authenticator == "AllowAllAuthenticator" && config.authorizer != "AllowAllAuthorizer"
    {
        anyhow::bail!(
            "{} can't be used with {}",
            config.authenticator,
            config.authorizer
        );
    }

    // The admin endpoint comes first so /livez and /startupz answer during commit-log replay.
    let admin_state = Arc::new(AdminState::default());
    let lifecycle = admin_state.lifecycle.clone();
    let metrics = admin_state.metrics.clone();
    spawn_heartbeat(lifecycle.clone());
    let admin_addr = SocketAddr::new(config.rpc_address, config.admin_port);
    admin::spawn(admin_addr, admin_state.clone())
        .with_context(|| format!("binding the admin port {admin_addr}"))?;

    let system_dir = config.data_dir.join("system");
    std::fs::create_dir_all(&system_dir)
        .with_context(|| format!("creating {}", system_dir.display()))?;
    let identity_existed = identity::state_path(&config.data_dir).exists();
    let mut local =
        identity::load_or_init(&config.data_dir, &config.cluster_name, config.num_tokens)?;
    let needs_join = joining::needs_join(&system_dir, identity_existed);
    info!(host_id = %local.host_id, tokens = local.tokens.len(), "node identity");

    let store = SchemaStore::new(&system_dir);
    let schema =
        Executor::load_schema(&store).map_err(|e| anyhow::anyhow!("loading schema: {e}"))?;
    let tables = Executor::engine_tables(&schema);
    let engine_config = EngineConfig {
        data_dir: config
            .data_file_directories
            .first()
            .cloned()
            .unwrap_or_else(|| config.data_dir.join("data")),
        commitlog_dir: config.commitlog_directory.clone(),
        commitlog_sync: config.commitlog_sync,
        commitlog_segment_size: config.commitlog_segment_size,
        memtable_space_bytes: config.memtable_heap_space,
        skip_corrupt_commitlog_entries: config.skip_corrupt_commitlog_entries,
        tombstone_warn_threshold: config.tombstone_warn_threshold,
        tombstone_failure_threshold: config.tombstone_failure_threshold,
    };
    let engine = tokio::task::spawn_blocking(move || Engine::open(engine_config, tables))
        .await
        .context("engine start-up task")?
        .context("opening the storage engine")?;
    let engine = Arc::new(engine);

    let broadcast_address = config.effective_broadcast_address();
    // A wildcard rpc_address (the image's 0.0.0.0) is not an address clients can use.
    let rpc_address = config.effective_broadcast_rpc_address();
    let node = NodeInfo {
        cluster_name: config.cluster_name.clone(),
        host_id: local.host_id,
        tokens: local.tokens.clone(),
        listen_address: config.listen_address,
        broadcast_address,
        rpc_address,
        native_port: config.native_transport_port,
        storage_port: config.storage_port,
        dc: config.dc.clone(),
        rack: config.rack.clone(),
        snitch: snitch_class(&config.endpoint_snitch),
        gossip_generation: (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)) as i32,
    };
    let pod = shoal_k8s::PodEnv::from_env(
        &|k| std::env::var(k).ok(),
        &shoal_k8s::identity::system_hostname(),
    );
    let _ = admin_state.facts.set(NodeFacts {
        host_id: local.host_id.to_string(),
        cluster_name: config.cluster_name.clone(),
        tokens: local.tokens.len(),
        dc: config.dc.clone(),
        rack: config.rack.clone(),
        listen_address: config.listen_address.to_string(),
        broadcast_address: broadcast_address.to_string(),
        rpc_address: rpc_address.to_string(),
        native_port: config.native_transport_port,
        storage_port: config.storage_port,
        hostname: pod.hostname.clone(),
        ordinal: pod.ordinal(),
        namespace: pod.namespace.clone(),
    });
    // Membership: internode messaging on the storage port, gossip on top of it.
    let dispatcher = Dispatcher::new();
    {
        let m = metrics.clone();
        dispatcher.set_observer(Arc::new(move |id| m.record_internode_message(id)));
    }
    let (messaging_stop, messaging_stop_rx) = watch::channel(false);
    let storage_bind = SocketAddr::new(config.listen_address, config.storage_port);
    let storage_advertised = SocketAddr::new(broadcast_address, config.storage_port);
    let messaging = Messaging::start(
        MessagingConfig::new(storage_advertised, storage_bind),
        dispatcher.clone(),
        messaging_stop_rx,
    )
    .await
    .with_context(|| format!("binding the storage port {storage_bind}"))?;
    let own_ips = [config.listen_address, broadcast_address];
    let seeds: Vec<SocketAddr> = config
        .seeds
        .iter()
        .filter_map(|s| match discovery::parse_seed(s, config.storage_port) {
            Some(Seed::Addr(a)) if !own_ips.contains(&a.ip()) => Some(a),
            _ => None,
        })
        .collect();
    let gossip = GossipService::new(
        LocalInfo {
            host_id: HostId(*local.host_id.as_bytes()),
            addr: storage_advertised,
            generation: i64::from(node.gossip_generation),
            cluster_name: config.cluster_name.clone(),
            dc: config.dc.clone(),
            rack: config.rack.clone(),
        },
        seeds,
        messaging.clone(),
        &system_dir,
    );
    {
        let g = gossip.clone();
        let handler: dispatch::Handler =
            Arc::new(move |from: SocketAddr, frame: Frame| -> HandlerFuture {
                g.handle_frame(from, &frame);
                Box::pin(async { None })
            });
        dispatcher.register_all(
            &[
                MessageType::GossipSyn,
                MessageType::GossipAck,
                MessageType::GossipAck2,
                MessageType::Echo,
                MessageType::EchoReply,
            ],
            handler,
        );
    }
    gossip.set_local_state(AppKey::Tokens, format_tokens(&local.tokens));
    gossip.set_local_state(AppKey::RpcAddress, rpc_address.to_string());
    gossip.set_local_state(
        AppKey::NativeAddress,
        SocketAddr::new(rpc_address, config.native_transport_port).to_string(),
    );
    gossip.set_local_state(AppKey::ReleaseVersion, RELEASE_VERSION);
    gossip.set_local_state(AppKey::HostName, pod.hostname.clone());
    let (gossip_stop, gossip_stop_rx) = watch::channel(false);
    let gossip_task = tokio::spawn(gossip.clone().run(gossip_stop_rx));
    // Seed discovery merges the persisted peers with what the seed names resolve to, and
    // re-resolves quickly until a peer is live (the event bridge below reports that).
    let (_persisted_peers, persisted_rx) = watch::channel(gossip.persisted_peers());
    let (live_peer, live_rx) = watch::channel(false);
    if let Some(discovered) = start_discovery(
        &config,
        broadcast_address,
        persisted_rx,
        live_rx,
        &admin_state,
    ) {
        membership::spawn_seed_feed(gossip.clone(), discovered);
    }

    // Founding or joining before serving anything (kubernetes.md §3 rules 4 and 5).
    if needs_join {
        lifecycle.advance(NodeState::Joining);
    }
    // No seed but itself (or none at all) and no persisted peer: a lone seed node.
    let only_seed_is_self = gossip.persisted_peers().is_empty() && config.seeds.iter().all(|s| {
        matches!(discovery::parse_seed(s, config.storage_port), Some(Seed::Addr(a)) if own_ips.contains(&a.ip()))
    });
    let joined = joining::join(
        &gossip,
        &mut local,
        &identity::state_path(&config.data_dir),
        &system_dir,
        needs_join,
        pod.pod.as_ref(),
        only_seed_is_self,
    )
    .await?;
    info!(?joined, tokens = local.tokens.len(), "membership settled");
    let mut node = node;
    node.tokens = local.tokens.clone();

    let mut auth = shoal_cql::auth::AuthConfig::new(&config.authenticator, &config.authorizer);
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    auth.default_superuser = env("SHOAL_SUPERUSER_NAME").unwrap_or(auth.default_superuser);
    auth.default_password = env("SHOAL_SUPERUSER_PASSWORD").unwrap_or(auth.default_password);
    let executor = Arc::new(Executor::new(engine.clone(), node, store, schema).with_auth(auth));
    executor
        .auth()
        .bootstrap(&executor)
        .await
        .map_err(|e| anyhow::anyhow!("setting up roles: {e}"))?;
    executor.set_cluster_view(Arc::new(GossipView(gossip.clone())));
    // The coordinator: statements on replicated keyspaces go to their replicas at the
    // requested consistency; this node answers its peers' data-path messages.
    let local_info = HostInfo {
        addr: storage_advertised,
        dc: config.dc.clone(),
        rack: config.rack.clone(),
    };
    let topology = TopologyCell::new(Topology::single(
        HostId(*local.host_id.as_bytes()),
        local_info.clone(),
        &local.tokens,
    ));
    let (coordinator_stop, coordinator_stop_rx) = watch::channel(false);
    let hints_gauge = metrics.clone();
    let coordinator = coordinator::install(
        &executor,
        messaging.clone(),
        topology.clone(),
        &config.data_dir.join("hints"),
        CoordinatorConfig::from_config(&config),
        coordinator_stop_rx,
        Some(Arc::new(move |n: u64| {
            hints_gauge
                .gauges
                .hints_pending
                .store(n as i64, Ordering::Relaxed)
        })),
    )
    .context("opening the hints directory")?;
    {
        let replica = ReplicaHandler::new(executor.clone());
        let handler: dispatch::Handler =
            Arc::new(move |from: SocketAddr, frame: Frame| replica.handle(from, frame));
        dispatcher.register_all(&ReplicaHandler::TYPES, handler);
    }
    // Lightweight transactions: Paxos rounds across each partition's replicas; this
    // node's acceptor answers its peers' PAXOS_* requests.
    {
        let timeouts = paxos::proposer::Timeouts {
            request: Duration::from_millis(config.write_request_timeout_ms),
            cas_contention: Duration::from_millis(config.cas_contention_timeout_ms),
            ..Default::default()
        };
        let acceptor = paxos::install(&executor, topology.clone(), messaging.clone(), timeouts)
            .map_err(|e| anyhow::anyhow!("setting up Paxos: {e}"))?;
        let handler: dispatch::Handler =
            Arc::new(move |_: SocketAddr, frame: Frame| paxos::inbound(acceptor.clone(), frame));
        dispatcher.register_all(&paxos::service::REQUEST_TYPES, handler);
    }
    topology.set(membership::topology_of(&gossip, &local_info, &local.tokens));
    {
        let c = coordinator.clone();
        membership::spawn_topology_feed(
            gossip.clone(),
            topology.clone(),
            local_info,
            local.tokens.clone(),
            Arc::new(move || c.topology_changed()),
        );
    }
    membership::spawn_schema_sync(gossip.clone(), executor.clone());
    // DDL pushes to live peers and waits for them; differing gossiped versions are pulled.
    schema_sync::install(
        &executor,
        messaging.clone(),
        gossip.clone(),
        SchemaSyncConfig::default(),
        |t, h| dispatcher.register(t, h),
        messaging_stop.subscribe(),
    );
    membership::spawn_event_bridge(gossip.clone(), executor.clone(), live_peer);
    membership::spawn_load_publisher(gossip.clone(), engine.clone(), Duration::from_secs(10));
    spawn_member_gauges(gossip.clone(), metrics.clone());
    {
        let (g, ex) = (gossip.clone(), executor.clone());
        let ring: admin::RingFn =
            Arc::new(move |keyspace: Option<&str>| membership::ring_json(&g, &ex, keyspace));
        let _ = admin_state.ring.set(ring);
    }

    let addr = SocketAddr::new(config.rpc_address, config.native_transport_port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the CQL port {addr}"))?;
    let stats = Arc::new(ServerStats {
        observer: Some(Arc::new(MetricsObserver(metrics.clone()))),
        ..ServerStats::default()
    });
    spawn_sampler(engine.clone(), stats.clone(), metrics.clone());
    // The CQL server gets its own stop signal: a drain closes CQL long before the process
    // is asked to exit, and a /drain without SIGTERM never exits at all.
    let (cql_stop_tx, cql_stop_rx) = watch::channel(false);
    let server = tokio::spawn(server::serve(
        listener,
        executor.clone(),
        cql_stop_rx,
        stats.clone(),
    ));
    lifecycle.set_cql_serving(true);
    // Ready for clients: peers announce NEW_NODE/UP to their drivers once they see this.
    // (No bootstrap yet: a node owns its tokens from the start, as a restarted one does.)
    gossip.set_local_state(AppKey::Status, Status::Normal.as_str());
    lifecycle.advance(NodeState::Normal);
    info!(%addr, %admin_addr, elapsed_ms = started.elapsed().as_millis() as u64, "Shoal node ready: CQL native transport on {addr}");

    let signalled = tokio::select! {
        _ = shutdown.wait_for(|v| *v) => true,
        _ = lifecycle.wait_drain_requested() => false,
    };
    info!(
        reason = if signalled { "signal" } else { "/drain" },
        "draining"
    );
    lifecycle.request_drain();
    // Nothing coordinates through peers yet; once coordinators route requests to replicas,
    // announce DRAINING here so peers stop sending us work.
    if !options.drain_delay.is_zero() {
        info!(
            delay_ms = options.drain_delay.as_millis() as u64,
            "readiness is off; waiting for endpoints to update before closing CQL"
        );
        tokio::time::sleep(options.drain_delay).await;
    }
    let _ = cql_stop_tx.send(true);
    let _ = server.await;
    lifecycle.set_cql_serving(false);
    wait_in_flight(&stats, options.in_flight_timeout).await;
    let engine2 = engine.clone();
    // Flush memtables so the next start replays nothing: restarts stay fast.
    tokio::task::spawn_blocking(move || {
        engine2.flush_all()?;
        engine2.shutdown()
    })
    .await
    .context("engine shutdown task")??;
    // Announce the shutdown (Cassandra's GOSSIP_SHUTDOWN): peers mark this node down at once
    // instead of waiting for the failure detector. The gossip loop sends it as it stops; the
    // flush waits for it to leave. Never decommission: a SIGTERM is a restart or a
    // reschedule, not a removal (§3 rule 9).
    let _ = coordinator_stop.send(true);
    let _ = gossip_stop.send(true);
    let _ = gossip_task.await;
    if !messaging.flush(Duration::from_secs(1)).await {
        warn!("the shutdown announcement did not reach every peer in time");
    }
    lifecycle.mark_drained();
    info!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "drained: memtables flushed, CQL closed"
    );
    if !signalled {
        // `nodetool drain` semantics: stay up (probes answer, nothing is served) until told to go.
        let _ = shutdown.wait_for(|v| *v).await;
    }
    let _ = messaging_stop.send(true);
    info!("shutdown complete");
    Ok(())
}

/// Ticks the request runtime's heartbeat that `/livez` checks.
fn spawn_heartbeat(lifecycle: Arc<Lifecycle>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            lifecycle.heartbeat();
        }
    });
}

/// Copies engine and server numbers into the metrics registry, so `/metrics` reads atomics
/// only and never waits on the engine.
/// Forwards the CQL server's per-request reports to the metrics registry.
struct MetricsObserver(Arc<Metrics>);

impl server::RequestObserver for MetricsObserver {
    fn request_done(
        &self,
        opcode: u8,
        consistency: Option<u16>,
        elapsed: Duration,
        error_code: Option<i32>,
    ) {
        self.0
            .record_request(opcode, consistency, elapsed, error_code);
    }
}

fn spawn_sampler(engine: Arc<Engine>, stats: Arc<ServerStats>, metrics: Arc<Metrics>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            let g = &metrics.gauges;
            g.connected_clients.store(
                stats.connections.load(Ordering::Relaxed) as i64,
                Ordering::Relaxed,
            );
            g.cql_requests.store(
                stats.requests.load(Ordering::Relaxed) as u64,
                Ordering::Relaxed,
            );
            let engine = engine.clone();
            // stats() lists the commit-log directory: keep that off the async workers.
            let Ok(s) = tokio::task::spawn_blocking(move || engine.stats()).await else {
                continue;
            };
            g.memtable_bytes
                .store(s.memtable_bytes as i64, Ordering::Relaxed);
            g.memtable_partitions
                .store(s.memtable_partitions as i64, Ordering::Relaxed);
            g.sstables.store(s.sstables as i64, Ordering::Relaxed);
            g.flushes.store(s.flushes, Ordering::Relaxed);
            g.commitlog_segments
                .store(s.commitlog_segments as i64, Ordering::Relaxed);
            g.writes.store(s.writes, Ordering::Relaxed);
            g.reads.store(s.reads, Ordering::Relaxed);
            g.replayed_entries
                .store(s.replayed_entries, Ordering::Relaxed);
        }
    });
}

/// Copies gossip's live/down member counts (this node counted live) into `/metrics`.
fn spawn_member_gauges(gossip: Arc<GossipService>, metrics: Arc<Metrics>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            let (live, down) = gossip.view(|g| {
                (
                    g.live_members().len() as i64,
                    g.unreachable_members().len() as i64,
                )
            });
            let g = &metrics.gauges;
            g.gossip_live_members.store(live, Ordering::Relaxed);
            g.gossip_down_members.store(down, Ordering::Relaxed);
        }
    });
}

/// Starts seed discovery (headless-Service DNS + persisted peers): shown in `/status`, and
/// the returned addresses feed the gossiper's seeds.
fn start_discovery(
    config: &Config,
    broadcast: IpAddr,
    persisted: watch::Receiver<Vec<SocketAddr>>,
    live_peer: watch::Receiver<bool>,
    admin_state: &AdminState,
) -> Option<watch::Receiver<Vec<SocketAddr>>> {
    let resolver = match DnsResolver::from_system() {
        Ok(r) => Arc::new(r),
        Err(e) => {
            warn!(error = %e, "no DNS configuration (/etc/resolv.conf): seed names will not resolve");
            return None;
        }
    };
    let own = vec![config.listen_address, broadcast];
    let cfg = DiscoveryConfig::new(&config.seeds, config.storage_port, own);
    let rx = discovery::spawn(cfg, resolver, persisted, live_peer);
    let _ = admin_state.discovered.set(rx.clone());
    Some(rx)
}

/// Waits until every CQL connection finished its in-flight requests and closed.
async fn wait_in_flight(stats: &ServerStats, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let open = stats.connections.load(Ordering::Relaxed);
        if open == 0 {
            return;
        }
        if Instant::now() >= deadline {
            warn!(
                connections = open,
                "in-flight CQL requests did not finish in time; flushing anyway"
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
