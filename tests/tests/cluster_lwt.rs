//! Lightweight transactions across real node processes on 127.X.Y.1..3 (same ports):
//! concurrent compare-and-set increments through every node are linearizable, and Paxos
//! needs a quorum of replicas alive (SERIAL, RF=3).

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::db_error;
use scylla::client::session::Session;
use scylla::errors::DbError;
use scylla::frame::types::{Consistency, SerialConsistency};
use scylla::statement::prepared::PreparedStatement;
use scylla::value::{CqlValue, Row};
use shoal_tests::linearizability::{CasOp, CasOutcome, check_cas_register};
use shoal_tests::{Cluster, ring, wait_until};

const FAST_DRAIN: &[&str] = &["--drain-delay-ms", "0"];

async fn rf3_register(s: &Session) -> String {
    let ks = shoal_tests::unique_keyspace();
    common::exec(
        s,
        format!(
            "CREATE KEYSPACE {ks} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 3}}"
        ),
    )
    .await;
    common::exec(s, format!("CREATE TABLE {ks}.t (k int PRIMARY KEY, v int)")).await;
    s.await_schema_agreement().await.expect("schema agreement");
    // The register's initial value (0), on every replica; retried in case a replica
    // learns the new table a moment after agreement is reported.
    let mut init = s
        .prepare(format!("INSERT INTO {ks}.t (k, v) VALUES (0, 0)"))
        .await
        .unwrap();
    init.set_consistency(Consistency::All);
    let deadline = Instant::now() + Duration::from_secs(30);
    while let Err(e) = s.execute_unpaged(&init, ()).await {
        assert!(
            Instant::now() < deadline,
            "the new table never took writes: {e}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    ks
}

async fn cas_statement(s: &Session, ks: &str) -> PreparedStatement {
    let mut p = s
        .prepare(format!("UPDATE {ks}.t SET v = ? WHERE k = 0 IF v = ?"))
        .await
        .expect("prepare the CAS");
    p.set_consistency(Consistency::Quorum);
    p.set_serial_consistency(Some(SerialConsistency::Serial));
    // A timed-out CAS may still take effect: the driver must not run it twice.
    p.set_is_idempotent(false);
    p
}

/// `[applied]`, and the current value when not applied.
fn cas_result(res: scylla::response::query_result::QueryResult) -> (bool, Option<i32>) {
    let rows = res.into_rows_result().expect("an LWT answers with rows");
    let row: Row = rows
        .rows::<Row>()
        .expect("rows")
        .next()
        .expect("one row")
        .expect("row");
    let applied = row.columns[0] == Some(CqlValue::Boolean(true));
    let value = match row.columns.get(1) {
        Some(Some(CqlValue::Int(v))) => Some(*v),
        _ => None,
    };
    (applied, value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_increments_through_every_node_are_linearizable() {
    if shoal_tests::skip_without_cluster() {
        return;
    }
    let cluster = tokio::task::spawn_blocking(|| Cluster::start(3, FAST_DRAIN))
        .await
        .unwrap();
    let mut sessions = Vec::new();
    for n in &cluster.nodes {
        sessions.push(Arc::new(common::pinned(n).await));
    }
    let ks = rf3_register(&sessions[0]).await;

    let start = Instant::now();
    let run_for = Duration::from_secs(5);
    let history = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    // Two clients per node, each coordinating through its own node.
    for c in 0..6 {
        let s = sessions[c % 3].clone();
        let stmt = cas_statement(&s, &ks).await;
        let history = history.clone();
        tasks.push(tokio::spawn(async move {
            let mut known = 0i32;
            while start.elapsed() < run_for {
                let expected = known;
                let invoke = start.elapsed().as_nanos() as u64;
                let r = s.execute_unpaged(&stmt, (expected + 1, expected)).await;
                let complete = start.elapsed().as_nanos() as u64;
                let outcome = match r {
                    Ok(res) => match cas_result(res) {
                        (true, _) => CasOutcome::Applied,
                        (false, Some(v)) => CasOutcome::NotApplied(i64::from(v)),
                        (false, None) => panic!("a CAS not applied without the current value"),
                    },
                    Err(e) => match db_error(&e) {
                        Some((DbError::WriteTimeout { .. } | DbError::ReadTimeout { .. }, _)) => {
                            CasOutcome::Unknown
                        }
                        _ => panic!("CAS failed: {e}"),
                    },
                };
                match outcome {
                    CasOutcome::Applied => known += 1,
                    CasOutcome::NotApplied(v) => known = v as i32,
                    CasOutcome::Unknown => {}
                }
                history.lock().unwrap().push(CasOp {
                    invoke,
                    complete,
                    expected: i64::from(expected),
                    outcome,
                });
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut read = sessions[1]
        .prepare(format!("SELECT v FROM {ks}.t WHERE k = 0"))
        .await
        .unwrap();
    read.set_consistency(Consistency::Serial);
    let res = sessions[1]
        .execute_unpaged(&read, ())
        .await
        .expect("serial read");
    let (final_value,): (i32,) = res
        .into_rows_result()
        .unwrap()
        .first_row::<(i32,)>()
        .expect("the register");
    let ops = history.lock().unwrap().clone();
    let applied = ops
        .iter()
        .filter(|o| o.outcome == CasOutcome::Applied)
        .count();
    let unknown = ops
        .iter()
        .filter(|o| o.outcome == CasOutcome::Unknown)
        .count();
    eprintln!(
        "{} operations in {run_for:?}: {applied} applied, {unknown} timed out, final value {final_value}",
        ops.len()
    );
    assert!(applied > 0, "some increments must succeed");
    if let Err(e) = check_cas_register(&ops, 0, i64::from(final_value)) {
        panic!("not linearizable: {e}\n{ops:#?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serial_cas_needs_a_quorum_of_replicas() {
    if shoal_tests::skip_without_cluster() {
        return;
    }
    let mut cluster = tokio::task::spawn_blocking(|| Cluster::start(3, FAST_DRAIN))
        .await
        .unwrap();
    let s = common::pinned(&cluster.nodes[0]).await;
    let ks = rf3_register(&s).await;
    let stmt = cas_statement(&s, &ks).await;

    // One of three replicas killed: once the coordinator sees it down, a quorum is left
    // and SERIAL still succeeds.
    let ids = cluster.host_ids();
    cluster.nodes[2].kill9();
    let (ip, dead) = (cluster.nodes[0].ip(), ids[2].clone());
    tokio::task::spawn_blocking(move || {
        wait_until("node 0 to see node 2 down", Duration::from_secs(60), || {
            ring(ip)?
                .iter()
                .any(|m| m.host_id == dead && m.status != "Up")
                .then_some(())
        })
    })
    .await
    .unwrap();
    let (applied, _) = cas_result(
        s.execute_unpaged(&stmt, (1, 0))
            .await
            .expect("CAS, one down"),
    );
    assert!(applied);
    let (applied, v) = cas_result(
        s.execute_unpaged(&stmt, (5, 0))
            .await
            .expect("CAS, one down"),
    );
    assert_eq!((applied, v), (false, Some(1)));

    // Two down: once the coordinator knows it, Unavailable (SERIAL needs 2, 1 alive).
    // SIGTERM announces the shutdown, so that is at once; until then a CAS times out.
    cluster.nodes[1].terminate();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match s.execute_unpaged(&stmt, (2, 1)).await {
            Err(e) => match db_error(&e) {
                Some((
                    DbError::Unavailable {
                        consistency,
                        required,
                        alive,
                    },
                    _,
                )) => {
                    assert_eq!(*consistency, Consistency::Serial);
                    assert_eq!((*required, *alive), (2, 1));
                    break;
                }
                Some((DbError::WriteTimeout { .. }, _)) if Instant::now() < deadline => {}
                other => panic!("expected Unavailable, got {other:?} ({e})"),
            },
            Ok(_) => panic!("a SERIAL CAS succeeded with two of three replicas down"),
        }
    }
}
