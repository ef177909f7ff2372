//! The coordinator's protocol with three in-process nodes: real engines and executors,
//! real internode messaging on 127.0.0.1-3, topology snapshots set by hand (membership is
//! not involved), so liveness can be flipped deterministically.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use shoal_cql::error::{Consistency, CqlError};
use shoal_cql::executor::{Executor, NodeInfo, Session};
use shoal_cql::protocol::{QueryParameters, ResultBody, Values};
use shoal_cql::schema::persist::SchemaStore;
use shoal_engine::{Engine, EngineConfig};
use shoal_gossip::replication::TokenMetadata;
use shoal_gossip::ring::{HostId, HostInfo, Ring};
use shoal_node::coordinator::{ClusterCoordinator, CoordinatorConfig, ReplicaHandler};
use shoal_node::hints::HintStore;
use shoal_node::messaging::{Messaging, MessagingConfig};
use shoal_node::topology::{Topology, TopologyCell};
use tokio::sync::watch;

struct Node {
    ex: Arc<Executor>,
    coord: Arc<ClusterCoordinator>,
    topo: Arc<TopologyCell>,
    host: HostId,
    _dir: tempfile::TempDir,
}

struct Cluster {
    nodes: Vec<Node>,
    ring: Ring,
    _stop: watch::Sender<bool>,
}

fn tokens(n: usize) -> Vec<i64> {
    (0..4)
        .map(|j| {
            (-8_000_000_000_000_000i128 + ((j * 3 + n) as i128) * 1_400_000_000_000_000) as i64
        })
        .collect()
}

async fn free_addr(ip: &str) -> SocketAddr {
    let l = tokio::net::TcpListener::bind(format!("{ip}:0"))
        .await
        .unwrap();
    l.local_addr().unwrap()
}

impl Cluster {
    async fn start(config: impl Fn(usize) -> CoordinatorConfig) -> Cluster {
        let (stop_tx, stop) = watch::channel(false);
        let mut ring = Ring::new();
        let mut addrs = Vec::new();
        for n in 0..3 {
            let addr = free_addr(&format!("127.0.0.{}", n + 1)).await;
            addrs.push(addr);
            let info = HostInfo {
                addr,
                dc: "dc1".into(),
                rack: "r1".into(),
            };
            ring.set_host(HostId([n as u8 + 1; 16]), info, &tokens(n))
                .unwrap();
        }
        let mut nodes = Vec::new();
        for (n, addr) in addrs.iter().enumerate() {
            let dir = tempfile::tempdir().unwrap();
            let host = HostId([n as u8 + 1; 16]);
            let store = SchemaStore::new(dir.path().join("system"));
            std::fs::create_dir_all(dir.path().join("system")).unwrap();
            let schema = Executor::load_schema(&store).unwrap();
            let engine = Engine::open(
                EngineConfig {
                    data_dir: dir.path().join("data"),
                    commitlog_dir: dir.path().join("commitlog"),
                    ..EngineConfig::default()
                },
                Executor::engine_tables(&schema),
            )
            .unwrap();
            let info = NodeInfo {
                cluster_name: "test".into(),
                host_id: uuid::Uuid::from_bytes(host.0),
                tokens: tokens(n),
                listen_address: addr.ip(),
                broadcast_address: addr.ip(),
                rpc_address: addr.ip(),
                native_port: 9042,
                storage_port: addr.port(),
                dc: "dc1".into(),
                rack: "r1".into(),
                snitch: "org.apache.cassandra.locator.SimpleSnitch".into(),
                gossip_generation: 1,
            };
            let ex = Arc::new(Executor::new(Arc::new(engine), info, store, schema));
            let messaging = Messaging::start(
                MessagingConfig::new(*addr, *addr),
                ReplicaHandler::new(ex.clone()),
                stop.clone(),
            )
            .await
            .unwrap();
            let topo = TopologyCell::new(Topology {
                metadata: TokenMetadata::new(host, ring.clone()),
                alive: (1..=3).map(|i| HostId([i; 16])).collect(),
            });
            let hints = Arc::new(HintStore::open(&dir.path().join("hints")).unwrap());
            let coord =
                ClusterCoordinator::new(&ex, messaging, topo.clone(), Some(hints), config(n));
            ex.set_coordinator(coord.clone());
            nodes.push(Node {
                ex,
                coord,
                topo,
                host,
                _dir: dir,
            });
        }
        let c = Cluster {
            nodes,
            ring,
            _stop: stop_tx,
        };
        // Same schema (same table ids) everywhere, as schema agreement would give.
        for n in 0..3 {
            c.q(n, "CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}", Consistency::One)
                .await
                .unwrap();
            c.q(n, "CREATE TABLE ks.t (k int, c int, v text, PRIMARY KEY (k, c)) WITH id = 5a1c0e8e-0000-4000-8000-000000000001", Consistency::One)
                .await
                .unwrap();
            c.q(n, "CREATE TABLE ks.cnt (k int PRIMARY KEY, n counter) WITH id = 5a1c0e8e-0000-4000-8000-000000000002", Consistency::One)
                .await
                .unwrap();
        }
        c
    }

    async fn q(
        &self,
        n: usize,
        cql: &str,
        cl: Consistency,
    ) -> Result<Vec<Vec<Option<bytes::Bytes>>>, CqlError> {
        self.q_paged(n, cql, cl, None).await.map(|(r, _)| r)
    }

    async fn q_paged(
        &self,
        n: usize,
        cql: &str,
        cl: Consistency,
        page: Option<(i32, Option<bytes::Bytes>)>,
    ) -> Result<(Vec<Vec<Option<bytes::Bytes>>>, Option<bytes::Bytes>), CqlError> {
        let mut session = Session::default();
        let params = QueryParameters {
            consistency: cl,
            values: Values::default(),
            skip_metadata: false,
            page_size: page.as_ref().map(|p| p.0),
            paging_state: page.and_then(|p| p.1),
            serial_consistency: None,
            default_timestamp: None,
            keyspace: None,
            now_in_seconds: None,
        };
        let out = self.nodes[n].ex.query(&mut session, cql, &params).await?;
        Ok(match out.body {
            ResultBody::Rows(r) => (r.rows, r.metadata.paging_state.clone()),
            _ => (Vec::new(), None),
        })
    }

    /// Sets which hosts node `n` believes alive.
    fn set_alive(&self, n: usize, alive: &[usize]) {
        let node = &self.nodes[n];
        node.topo.set(Topology {
            metadata: TokenMetadata::new(node.host, self.ring.clone()),
            alive: alive
                .iter()
                .map(|i| HostId([*i as u8 + 1; 16]))
                .collect::<HashSet<_>>(),
        });
    }

    /// What node `n` holds itself (a read at ONE that node would answer alone).
    async fn local_rows(&self, n: usize, cql: &str) -> usize {
        // Only this node alive in its own view: the read cannot go elsewhere.
        self.set_alive(n, &[n]);
        let r = self.q(n, cql, Consistency::One).await.unwrap().len();
        self.set_alive(n, &[0, 1, 2]);
        r
    }
}

#[allow(clippy::ptr_arg)]
fn text(row: &Vec<Option<bytes::Bytes>>) -> String {
    // `map(text)` over rows hands out `&Vec`.
    String::from_utf8(row[0].clone().unwrap().to_vec()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_reach_every_replica_and_reads_agree() {
    let c = Cluster::start(|_| CoordinatorConfig::default()).await;
    c.q(
        0,
        "INSERT INTO ks.t (k, c, v) VALUES (1, 1, 'a')",
        Consistency::All,
    )
    .await
    .unwrap();
    c.q(1, "BEGIN UNLOGGED BATCH INSERT INTO ks.t (k, c, v) VALUES (1, 2, 'b'); INSERT INTO ks.t (k, c, v) VALUES (1, 3, 'c'); APPLY BATCH", Consistency::Quorum)
        .await
        .unwrap();
    for n in 0..3 {
        let rows = c
            .q(n, "SELECT v FROM ks.t WHERE k = 1", Consistency::All)
            .await
            .unwrap();
        assert_eq!(rows.iter().map(text).collect::<Vec<_>>(), ["a", "b", "c"]);
    }
    // QUORUM waits for two; the third applies shortly after.
    tokio::time::sleep(Duration::from_millis(200)).await;
    for n in 0..3 {
        assert_eq!(c.local_rows(n, "SELECT v FROM ks.t WHERE k = 1").await, 3);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unavailable_then_hints_replay() {
    let c = Cluster::start(|_| CoordinatorConfig::default()).await;
    c.set_alive(0, &[0, 1]);
    match c
        .q(
            0,
            "INSERT INTO ks.t (k, c, v) VALUES (2, 1, 'x')",
            Consistency::All,
        )
        .await
    {
        Err(CqlError::Unavailable {
            consistency,
            required,
            alive,
            ..
        }) => assert_eq!((consistency, required, alive), (Consistency::All, 3, 2)),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    c.q(
        0,
        "INSERT INTO ks.t (k, c, v) VALUES (2, 1, 'x')",
        Consistency::Quorum,
    )
    .await
    .unwrap();
    // A counter delta for a replica known down was never sent: it is hinted too, and the
    // hint applies it exactly once.
    c.q(
        0,
        "UPDATE ks.cnt SET n = n + 1 WHERE k = 1",
        Consistency::Quorum,
    )
    .await
    .unwrap();
    assert_eq!(c.nodes[0].coord.hints_pending(), 2);
    assert_eq!(c.local_rows(2, "SELECT v FROM ks.t WHERE k = 2").await, 0);
    assert_eq!(c.local_rows(2, "SELECT n FROM ks.cnt WHERE k = 1").await, 0);
    c.set_alive(0, &[0, 1, 2]);
    let delivered = c.nodes[0]
        .coord
        .replay_hints(c.nodes[2].host)
        .await
        .unwrap();
    assert_eq!(delivered, 2);
    assert_eq!(c.nodes[0].coord.hints_pending(), 0);
    assert_eq!(c.local_rows(2, "SELECT v FROM ks.t WHERE k = 2").await, 1);
    assert_eq!(c.local_rows(2, "SELECT n FROM ks.cnt WHERE k = 1").await, 1);
    c.set_alive(2, &[2]);
    let rows = c
        .q(2, "SELECT n FROM ks.cnt WHERE k = 1", Consistency::One)
        .await
        .unwrap();
    c.set_alive(2, &[0, 1, 2]);
    let n = i64::from_be_bytes(rows[0][0].clone().unwrap().as_ref().try_into().unwrap());
    assert_eq!(
        n, 1,
        "the hinted delta was applied once on the replica that was down"
    );
    // ANY with every replica down: a hint is enough.
    c.set_alive(0, &[0]);
    c.q(
        0,
        "INSERT INTO ks.t (k, c, v) VALUES (3, 1, 'y')",
        Consistency::Any,
    )
    .await
    .unwrap();
    assert_eq!(c.nodes[0].coord.hints_pending(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_repair_fixes_the_stale_replica() {
    let c = Cluster::start(|n| CoordinatorConfig {
        hinted_handoff_enabled: n != 0,
        ..CoordinatorConfig::default()
    })
    .await;
    c.set_alive(0, &[0, 1]);
    c.q(
        0,
        "INSERT INTO ks.t (k, c, v) VALUES (4, 1, 'new')",
        Consistency::One,
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(c.nodes[0].coord.hints_pending(), 0);
    assert_eq!(c.local_rows(2, "SELECT v FROM ks.t WHERE k = 4").await, 0);
    c.set_alive(0, &[0, 1, 2]);
    // Node 2 coordinates: its own (empty) digest disagrees, the merge wins, it is repaired.
    let rows = c
        .q(2, "SELECT v FROM ks.t WHERE k = 4", Consistency::All)
        .await
        .unwrap();
    assert_eq!(rows.iter().map(text).collect::<Vec<_>>(), ["new"]);
    assert_eq!(c.local_rows(2, "SELECT v FROM ks.t WHERE k = 4").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_reads_walk_the_ring_in_order_and_page() {
    let c = Cluster::start(|_| CoordinatorConfig::default()).await;
    for k in 0..60 {
        c.q(
            k % 3,
            &format!("INSERT INTO ks.t (k, c, v) VALUES ({k}, 0, 'v{k}')"),
            Consistency::Quorum,
        )
        .await
        .unwrap();
    }
    let all = c
        .q(1, "SELECT k, v FROM ks.t", Consistency::Quorum)
        .await
        .unwrap();
    assert_eq!(all.len(), 60);
    let tokens_in_order = c
        .q(1, "SELECT token(k) FROM ks.t", Consistency::All)
        .await
        .unwrap();
    let toks: Vec<i64> = tokens_in_order
        .iter()
        .map(|r| i64::from_be_bytes(r[0].as_ref().unwrap()[..].try_into().unwrap()))
        .collect();
    assert!(toks.windows(2).all(|w| w[0] < w[1]), "ring order");
    // Paging across segment boundaries sees every partition once.
    let mut seen = Vec::new();
    let mut state = None;
    loop {
        let (rows, next) = c
            .q_paged(
                2,
                "SELECT k FROM ks.t",
                Consistency::Quorum,
                Some((7, state)),
            )
            .await
            .unwrap();
        seen.extend(rows);
        match next {
            Some(s) => state = Some(s),
            None => break,
        }
    }
    assert_eq!(seen.len(), 60);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 60);
    let limited = c
        .q(0, "SELECT k FROM ks.t LIMIT 25", Consistency::One)
        .await
        .unwrap();
    assert_eq!(limited.len(), 25);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncate_needs_every_node() {
    let c = Cluster::start(|_| CoordinatorConfig::default()).await;
    c.q(
        0,
        "INSERT INTO ks.t (k, c, v) VALUES (9, 1, 'z')",
        Consistency::All,
    )
    .await
    .unwrap();
    c.set_alive(1, &[0, 1]);
    match c.q(1, "TRUNCATE ks.t", Consistency::One).await {
        Err(CqlError::Unavailable {
            required, alive, ..
        }) => assert_eq!((required, alive), (3, 2)),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    c.set_alive(1, &[0, 1, 2]);
    c.q(1, "TRUNCATE ks.t", Consistency::One).await.unwrap();
    for n in 0..3 {
        assert_eq!(c.local_rows(n, "SELECT v FROM ks.t WHERE k = 9").await, 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_replica_times_out_and_is_hinted() {
    let c = Cluster::start(|_| CoordinatorConfig {
        write_timeout: Duration::from_millis(500),
        ..CoordinatorConfig::default()
    })
    .await;
    // Node 0 believes node 2 alive, but node 2's address is a closed port.
    let mut ring = c.ring.clone();
    let h3 = c.nodes[2].host;
    let mut info = ring.host(&h3).unwrap().clone();
    info.addr = SocketAddr::new(info.addr.ip(), 1);
    ring.set_host(h3, info, &tokens(2)).unwrap();
    c.nodes[0].topo.set(Topology {
        metadata: TokenMetadata::new(c.nodes[0].host, ring),
        alive: (1..=3).map(|i| HostId([i; 16])).collect(),
    });
    match c
        .q(
            0,
            "INSERT INTO ks.t (k, c, v) VALUES (5, 1, 'q')",
            Consistency::All,
        )
        .await
    {
        Err(CqlError::WriteTimeout {
            received,
            block_for,
            ..
        }) => assert_eq!((received, block_for), (2, 3)),
        other => panic!("expected WriteTimeout, got {other:?}"),
    }
    c.q(
        0,
        "INSERT INTO ks.t (k, c, v) VALUES (5, 2, 'q')",
        Consistency::Quorum,
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(c.nodes[0].coord.hints_pending(), 2);
}
