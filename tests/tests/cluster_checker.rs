//! A consistency checker under failures with real node processes: concurrent clients
//! write and read at QUORUM (RF=3, three nodes) while a nemesis kills (SIGKILL) and
//! restarts one node at a time. Every operation is recorded with its invoke and complete
//! times, then checked:
//!
//! - each key has one writer adding rows `(k, 1)`, `(k, 2)`, ... in order, so values
//!   increase in real time; a read asks for the newest row (`LIMIT 1`, clustering
//!   descending) and must see at least the newest value acknowledged before the read was
//!   invoked, and nothing that was not yet being written when the read completed;
//! - at the end, with every node up, a read at ALL of each partition contains every
//!   acknowledged value, and only values that some write attempted (failed writes may or
//!   may not be there).

mod common;

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::prepare_cl;
use rand::Rng;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::frame::types::Consistency;
use shoal_tests::Cluster;

const FAST_DRAIN: &[&str] = &["--drain-delay-ms", "0"];
const KEYS: i32 = 6;
const READERS: usize = 4;
const NEMESIS_FOR: Duration = Duration::from_secs(24);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Clone, Debug)]
enum Kind {
    /// Added row `value`.
    Write,
    /// Saw `value` as the newest row (0: none).
    Read,
}

#[derive(Clone, Debug)]
struct Op {
    kind: Kind,
    key: i32,
    value: i32,
    invoke: Instant,
    complete: Instant,
    ok: bool,
}

type History = Arc<Mutex<Vec<Op>>>;

fn record(h: &History, op: Op) {
    h.lock().unwrap().push(op);
}

async fn writer(s: Arc<Session>, ks: String, key: i32, stop: Arc<AtomicBool>, h: History) {
    let mut insert = prepare_cl(
        &s,
        &format!("INSERT INTO {ks}.t (k, v) VALUES (?, ?)"),
        Consistency::Quorum,
        true,
    )
    .await;
    insert.set_request_timeout(Some(REQUEST_TIMEOUT));
    let mut v = 0;
    while !stop.load(Ordering::Relaxed) {
        v += 1;
        let invoke = Instant::now();
        let ok = s.execute_unpaged(&insert, (key, v)).await.is_ok();
        record(
            &h,
            Op {
                kind: Kind::Write,
                key,
                value: v,
                invoke,
                complete: Instant::now(),
                ok,
            },
        );
        // Paced, so partitions stay small enough for reads to keep up on a busy machine.
        tokio::time::sleep(Duration::from_millis(if ok { 15 } else { 50 })).await;
    }
}

async fn reader(s: Arc<Session>, ks: String, stop: Arc<AtomicBool>, h: History) {
    let mut select = prepare_cl(
        &s,
        &format!("SELECT v FROM {ks}.t WHERE k = ? LIMIT 1"),
        Consistency::Quorum,
        true,
    )
    .await;
    select.set_request_timeout(Some(REQUEST_TIMEOUT));
    while !stop.load(Ordering::Relaxed) {
        let key = rand::rng().random_range(0..KEYS);
        let invoke = Instant::now();
        let got = s.execute_unpaged(&select, (key,)).await.ok().and_then(|r| {
            let rows = r.into_rows_result().ok()?;
            let v: Vec<(i32,)> = rows.rows::<(i32,)>().ok()?.collect::<Result<_, _>>().ok()?;
            Some(v.first().map_or(0, |r| r.0))
        });
        record(
            &h,
            Op {
                kind: Kind::Read,
                key,
                value: got.unwrap_or(0),
                invoke,
                complete: Instant::now(),
                ok: got.is_some(),
            },
        );
        if got.is_none() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Stale or invented reads in `history` (one line each).
fn check_reads(history: &[Op]) -> Vec<String> {
    let mut problems = Vec::new();
    for r in history
        .iter()
        .filter(|o| matches!(o.kind, Kind::Read) && o.ok)
    {
        let writes = history
            .iter()
            .filter(|w| matches!(w.kind, Kind::Write) && w.key == r.key);
        let acked_before = writes
            .clone()
            .filter(|w| w.ok && w.complete < r.invoke)
            .map(|w| w.value)
            .max()
            .unwrap_or(0);
        let attempted_by_end = writes
            .filter(|w| w.invoke < r.complete)
            .map(|w| w.value)
            .max()
            .unwrap_or(0);
        if r.value < acked_before {
            problems.push(format!(
                "key {}: read saw {} but {} was acknowledged before the read started",
                r.key, r.value, acked_before
            ));
        }
        if r.value > attempted_by_end {
            problems.push(format!(
                "key {}: read saw {} but only {} had been written when it completed",
                r.key, r.value, attempted_by_end
            ));
        }
    }
    problems
}

#[test]
fn the_checker_flags_stale_reads() {
    let t0 = Instant::now();
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    let op = |kind, value, invoke, complete, ok| Op {
        kind,
        key: 1,
        value,
        invoke: at(invoke),
        complete: at(complete),
        ok,
    };
    let mut h = vec![
        op(Kind::Write, 1, 0, 10, true),
        op(Kind::Write, 2, 10, 20, false),
        // Concurrent with write 2 (which failed): may or may not see it.
        op(Kind::Read, 2, 12, 15, true),
        op(Kind::Read, 1, 30, 40, true),
    ];
    assert!(check_reads(&h).is_empty());
    h.push(op(Kind::Write, 3, 20, 30, true));
    h.push(op(Kind::Read, 2, 31, 35, true)); // 3 was acked at 30
    h.push(op(Kind::Read, 4, 36, 37, true)); // 4 was never written
    assert_eq!(check_reads(&h).len(), 2, "{:?}", check_reads(&h));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quorum_reads_and_writes_stay_consistent_while_nodes_are_killed() {
    if shoal_tests::skip_without_cluster() {
        return;
    }
    let cluster = tokio::task::spawn_blocking(|| Cluster::start(3, FAST_DRAIN))
        .await
        .unwrap();
    let mut b = SessionBuilder::new().connection_timeout(Duration::from_secs(5));
    for n in &cluster.nodes {
        b = b.known_node_addr(n.addr());
    }
    let s = Arc::new(b.build().await.expect("session"));
    let ks = shoal_tests::unique_keyspace();
    common::exec(
        &s,
        format!(
            "CREATE KEYSPACE {ks} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 3}}"
        ),
    )
    .await;
    common::exec(
        &s,
        format!(
            "CREATE TABLE {ks}.t (k int, v int, PRIMARY KEY (k, v)) WITH CLUSTERING ORDER BY (v DESC)"
        ),
    )
    .await;
    s.await_schema_agreement().await.expect("schema agreement");

    let history: History = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for key in 0..KEYS {
        clients.push(tokio::spawn(writer(
            s.clone(),
            ks.clone(),
            key,
            stop.clone(),
            history.clone(),
        )));
    }
    for _ in 0..READERS {
        clients.push(tokio::spawn(reader(
            s.clone(),
            ks.clone(),
            stop.clone(),
            history.clone(),
        )));
    }

    // The nemesis: one node at a time is killed, left down briefly, restarted, and the
    // cluster converges again before the next one goes.
    let started = Instant::now();
    let (cluster, kills) = tokio::task::spawn_blocking(move || {
        let mut cluster = cluster;
        let mut kills = Vec::new();
        let mut rng = rand::rng();
        while started.elapsed() < NEMESIS_FOR {
            std::thread::sleep(Duration::from_millis(rng.random_range(1500..3000)));
            let i = rng.random_range(0..cluster.nodes.len());
            cluster.nodes[i].kill9();
            std::thread::sleep(Duration::from_millis(rng.random_range(1000..3000)));
            let ready = cluster.nodes[i].restart();
            cluster.wait_converged(Duration::from_secs(60));
            kills.push((i, ready));
        }
        (cluster, kills)
    })
    .await
    .unwrap();
    // A few seconds of quiet with every node up, then stop.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    let history = history.lock().unwrap().clone();
    let count =
        |kind: fn(&Op) -> bool, ok: bool| history.iter().filter(|o| kind(o) && o.ok == ok).count();
    let is_write = |o: &Op| matches!(o.kind, Kind::Write);
    let is_read = |o: &Op| matches!(o.kind, Kind::Read);
    let (w_ok, w_fail) = (count(is_write, true), count(is_write, false));
    let (r_ok, r_fail) = (count(is_read, true), count(is_read, false));
    shoal_tests::record(&format!(
        "cluster_checker: {:?} with {} kill -9/restarts (node, restart-to-CQL) {kills:?}: writes {w_ok} ok / {w_fail} failed, reads {r_ok} ok / {r_fail} failed",
        started.elapsed(),
        kills.len()
    ));
    assert!(
        w_ok >= 50 && r_ok >= 50,
        "too few successful operations to check anything: writes {w_ok}, reads {r_ok}"
    );
    let problems = check_reads(&history);
    assert!(
        problems.is_empty(),
        "{} reads went back in time:\n{}",
        problems.len(),
        problems.join("\n")
    );

    // Every acknowledged write is there at ALL; nothing that was never written is.
    tokio::task::block_in_place(|| cluster.wait_converged(Duration::from_secs(60)));
    let mut acked: HashMap<i32, BTreeSet<i32>> = HashMap::new();
    let mut attempted: HashMap<i32, BTreeSet<i32>> = HashMap::new();
    for w in history.iter().filter(|o| matches!(o.kind, Kind::Write)) {
        attempted.entry(w.key).or_default().insert(w.value);
        if w.ok {
            acked.entry(w.key).or_default().insert(w.value);
        }
    }
    let all = prepare_cl(
        &s,
        &format!("SELECT v FROM {ks}.t WHERE k = ?"),
        Consistency::All,
        true,
    )
    .await;
    let mut failed_present = 0;
    for key in 0..KEYS {
        let got: BTreeSet<i32> = wait_until_ok(&s, &all, key).await;
        let want = acked.remove(&key).unwrap_or_default();
        let lost: Vec<i32> = want.difference(&got).copied().collect();
        assert!(
            lost.is_empty(),
            "key {key}: acknowledged writes missing at ALL: {lost:?}"
        );
        let tried = attempted.remove(&key).unwrap_or_default();
        let invented: Vec<i32> = got.difference(&tried).copied().collect();
        assert!(
            invented.is_empty(),
            "key {key}: never written: {invented:?}"
        );
        failed_present += got.len() - want.len();
    }
    // How much repairing the kills caused (hints delivered, repair and forwarded writes).
    let received = |verb: &str| -> u64 {
        cluster
            .nodes
            .iter()
            .map(|n| common::internode_received(n, verb))
            .sum()
    };
    shoal_tests::record(&format!(
        "cluster_checker: all {w_ok} acknowledged writes read back at ALL; {failed_present} of {w_fail} failed writes are present too; counted since each node's last start the nodes received {} HINT_REQ, {} MUTATION_REQ, {} READ_REQ",
        received("HINT_REQ"),
        received("MUTATION_REQ"),
        received("READ_REQ")
    ));
    drop(cluster);
}

/// Reads a partition at ALL, retrying while a just-restarted node is still settling.
async fn wait_until_ok(
    s: &Session,
    stmt: &scylla::statement::prepared::PreparedStatement,
    key: i32,
) -> BTreeSet<i32> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match s.execute_unpaged(stmt, (key,)).await {
            Ok(r) => {
                return r
                    .into_rows_result()
                    .expect("rows")
                    .rows::<(i32,)>()
                    .expect("int rows")
                    .map(|r| r.expect("row").0)
                    .collect();
            }
            Err(e) if Instant::now() < deadline => {
                eprintln!("read at ALL of key {key} failed, retrying: {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => panic!("read at ALL of key {key}: {e}"),
        }
    }
}
