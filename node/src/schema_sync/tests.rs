//! Three in-process nodes (real executors, real messaging on 127.0.0.2..4) exchanging schema.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, Ordering};

use shoal_cql::executor::{NodeInfo, Session};
use shoal_cql::protocol::{QueryParameters, ResultBody};
use shoal_cql::schema::persist::SchemaStore;
use shoal_engine::{Engine, EngineConfig};

use super::*;
use crate::messaging::{InboundHandler, MessagingConfig};

struct Route(Handler);

impl InboundHandler for Route {
    fn handle(&self, from: SocketAddr, frame: Frame) -> HandlerFuture {
        (self.0)(from, frame)
    }
}

struct Node {
    ex: Arc<Executor>,
    addr: SocketAddr,
    alive: AtomicBool,
    _dir: tempfile::TempDir,
}

/// "Gossip": every other node, its liveness flag and its current version.
struct Peers {
    me: usize,
    nodes: Arc<Mutex<Vec<Arc<Node>>>>,
    /// Peers that are not nodes of this test (a stuck one).
    extra: Arc<Mutex<Vec<SchemaPeer>>>,
}

impl SchemaPeers for Peers {
    fn schema_peers(&self) -> Vec<SchemaPeer> {
        let nodes = self.nodes.lock().unwrap();
        nodes
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != self.me)
            .map(|(_, n)| SchemaPeer {
                internode: n.addr,
                alive: n.alive.load(Ordering::SeqCst),
                schema_version: Some(n.ex.schema().version),
            })
            .chain(self.extra.lock().unwrap().iter().cloned())
            .collect()
    }
}

fn executor(dir: &std::path::Path, ip: IpAddr) -> Arc<Executor> {
    let store = SchemaStore::new(dir.join("system"));
    let schema = Executor::load_schema(&store).unwrap();
    let engine = Engine::open(
        EngineConfig {
            data_dir: dir.join("data"),
            commitlog_dir: dir.join("commitlog"),
            ..Default::default()
        },
        Executor::engine_tables(&schema),
    )
    .unwrap();
    let info = NodeInfo {
        cluster_name: "test".into(),
        host_id: Uuid::new_v4(),
        tokens: vec![0],
        listen_address: ip,
        broadcast_address: ip,
        rpc_address: ip,
        native_port: 9042,
        storage_port: 7000,
        dc: "datacenter1".into(),
        rack: "rack1".into(),
        snitch: "org.apache.cassandra.locator.SimpleSnitch".into(),
        gossip_generation: 1,
    };
    Arc::new(Executor::new(Arc::new(engine), info, store, schema))
}

/// Starts `n` nodes with schema sync installed; the watcher runs with short delays.
async fn cluster(n: usize, stop: &watch::Receiver<bool>) -> Vec<Arc<Node>> {
    cluster_with(n, stop, Arc::default(), SchemaSyncConfig::default()).await
}

async fn cluster_with(
    n: usize,
    stop: &watch::Receiver<bool>,
    extra: Arc<Mutex<Vec<SchemaPeer>>>,
    base: SchemaSyncConfig,
) -> Vec<Arc<Node>> {
    let nodes = Arc::new(Mutex::new(Vec::new()));
    let mut syncs = Vec::new();
    for i in 0..n {
        let ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + i as u8));
        let dir = tempfile::tempdir().unwrap();
        let ex = executor(dir.path(), ip);
        let bind = SocketAddr::new(ip, 0);
        // Bind first to learn a free port, then advertise it.
        let port = std::net::TcpListener::bind(bind)
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = SocketAddr::new(ip, port);
        let messaging = Messaging::start(
            MessagingConfig::new(addr, addr),
            Arc::new(Route(handler(ex.clone()))),
            stop.clone(),
        )
        .await
        .unwrap();
        let peers = Arc::new(Peers {
            me: i,
            nodes: nodes.clone(),
            extra: extra.clone(),
        });
        let config = SchemaSyncConfig {
            settle: Duration::from_millis(200),
            check_interval: Duration::from_millis(100),
            ..base.clone()
        };
        // The handlers are already routed above; `install` would register them with the
        // node's dispatcher.
        syncs.push(install(
            &ex,
            messaging,
            peers,
            config,
            |_, _| {},
            stop.clone(),
        ));
        nodes.lock().unwrap().push(Arc::new(Node {
            ex,
            addr,
            alive: AtomicBool::new(true),
            _dir: dir,
        }));
    }
    // The syncs live in their watcher tasks.
    drop(syncs);
    nodes.lock().unwrap().clone()
}

async fn q(ex: &Executor, cql: &str) -> ResultBody {
    let mut session = Session::default();
    let params = QueryParameters {
        consistency: shoal_cql::error::Consistency::One,
        values: Default::default(),
        skip_metadata: false,
        page_size: None,
        paging_state: None,
        serial_consistency: None,
        default_timestamp: None,
        keyspace: None,
        now_in_seconds: None,
    };
    ex.query(&mut session, cql, &params)
        .await
        .unwrap_or_else(|e| panic!("{cql}: {e}"))
        .body
}

async fn agree(nodes: &[Arc<Node>], within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        let v = nodes[0].ex.schema().version;
        if nodes.iter().all(|n| n.ex.schema().version == v) {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

const KS: &str =
    "CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ddl_is_on_every_live_node_when_it_returns() {
    let (stop_tx, stop) = watch::channel(false);
    let nodes = cluster(3, &stop).await;
    q(&nodes[0].ex, KS).await;
    q(
        &nodes[0].ex,
        "CREATE TABLE ks.t (k int PRIMARY KEY, v text)",
    )
    .await;
    // No waiting: the DDL answered after the peers acknowledged the push.
    for n in &nodes[1..] {
        assert_eq!(n.ex.schema().version, nodes[0].ex.schema().version);
        q(&n.ex, "INSERT INTO ks.t (k, v) VALUES (1, 'x')").await;
        let ResultBody::Rows(r) = q(&n.ex, "SELECT v FROM ks.t WHERE k = 1").await else {
            panic!("rows expected")
        };
        assert_eq!(r.rows.len(), 1);
    }
    stop_tx.send(true).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_ddl_on_two_nodes_converges() {
    let (stop_tx, stop) = watch::channel(false);
    let nodes = cluster(3, &stop).await;
    q(&nodes[0].ex, KS).await;
    let (a, c) = (nodes[0].ex.clone(), nodes[2].ex.clone());
    let ta = tokio::spawn(async move { q(&a, "CREATE TABLE ks.ta (k int PRIMARY KEY)").await });
    let tc = tokio::spawn(async move { q(&c, "CREATE TABLE ks.tc (k int PRIMARY KEY)").await });
    ta.await.unwrap();
    tc.await.unwrap();
    assert!(
        agree(&nodes, Duration::from_secs(5)).await,
        "one schema version"
    );
    for n in &nodes {
        for t in ["ta", "tc"] {
            q(&n.ex, &format!("INSERT INTO ks.{t} (k) VALUES (1)")).await;
        }
    }
    stop_tx.send(true).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_down_during_ddl_catches_up() {
    let (stop_tx, stop) = watch::channel(false);
    let nodes = cluster(3, &stop).await;
    nodes[2].alive.store(false, Ordering::SeqCst);
    q(&nodes[0].ex, KS).await;
    q(&nodes[0].ex, "CREATE TABLE ks.t (k int PRIMARY KEY)").await;
    q(&nodes[1].ex, "DROP TABLE ks.t").await;
    assert!(nodes[2].ex.schema().keyspace("ks").is_none());
    assert_eq!(nodes[0].ex.schema().version, nodes[1].ex.schema().version);
    nodes[2].alive.store(true, Ordering::SeqCst);
    assert!(agree(&nodes, Duration::from_secs(5)).await, "caught up");
    assert!(nodes[2].ex.schema().keyspace("ks").is_some());
    assert!(nodes[2].ex.schema().table("ks", "t").is_none());
    stop_tx.send(true).unwrap();
}

/// Never answers a schema push: a peer gossip still reports alive but that is stuck.
struct Stuck;

impl InboundHandler for Stuck {
    fn handle(&self, _from: SocketAddr, _frame: Frame) -> HandlerFuture {
        Box::pin(async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            None
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_peer_delays_ddl_by_the_push_timeout_at_most() {
    let (stop_tx, stop) = watch::channel(false);
    let ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 9));
    let port = std::net::TcpListener::bind(SocketAddr::new(ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let stuck_addr = SocketAddr::new(ip, port);
    let _stuck = Messaging::start(
        MessagingConfig::new(stuck_addr, stuck_addr),
        Arc::new(Stuck),
        stop.clone(),
    )
    .await
    .unwrap();
    let extra = Arc::new(Mutex::new(vec![SchemaPeer {
        internode: stuck_addr,
        alive: true,
        schema_version: None,
    }]));
    let timeout = Duration::from_millis(500);
    let config = SchemaSyncConfig {
        push_timeout: timeout,
        ..Default::default()
    };
    let nodes = cluster_with(2, &stop, extra, config).await;
    let started = Instant::now();
    q(&nodes[0].ex, KS).await;
    let took = started.elapsed();
    assert!(took >= timeout, "waited for the stuck peer: {took:?}");
    assert!(
        took < timeout * 3,
        "but not longer than the push timeout: {took:?}"
    );
    // The healthy peer got it all the same.
    assert_eq!(nodes[1].ex.schema().version, nodes[0].ex.schema().version);
    stop_tx.send(true).unwrap();
}
