//! Crash safety with `commitlog_sync: batch`: every write the node acknowledged must be
//! readable after `kill -9` and a restart on the same data directory, and the restart must
//! be fast.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::TryStreamExt;
use rand::Rng;
use shoal_tests::{Node, NodeOptions, skip_if_external};

/// (round, writer) -> every seq the node acknowledged.
type Acked = HashMap<(i32, i32), Vec<i32>>;

const WRITERS: i32 = 6;
const ROUNDS: i32 = 3;
/// The target is "well under a second"; this bound only catches pathologies.
const MAX_START: Duration = Duration::from_secs(5);

fn value(round: i32, writer: i32, seq: i32) -> String {
    format!(
        "round {round} writer {writer} seq {seq} {}",
        "x".repeat((seq % 50) as usize)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9() {
    let mut node = Node::start(NodeOptions::yaml("commitlog_sync: batch\n"));
    skip_if_external!(
        node,
        "kill -9 and restart need a process the harness started"
    );
    println!(
        "first start: CQL ready after {:?}",
        node.last_start_to_ready()
    );

    let session = common::connect(&node).await;
    let ks = common::create_keyspace(&session).await;
    common::exec(
        &session,
        format!("CREATE TABLE {ks}.t (round int, writer int, seq int, v text, PRIMARY KEY ((round, writer), seq))"),
    )
    .await;
    drop(session);

    let mut acked_all = Acked::new();
    let mut start_times = Vec::new();
    for round in 0..ROUNDS {
        let session = Arc::new(common::connect(&node).await);
        let insert = session
            .prepare(format!(
                "INSERT INTO {ks}.t (round, writer, seq, v) VALUES (?, ?, ?, ?)"
            ))
            .await
            .expect("prepare");
        let stop = Arc::new(AtomicBool::new(false));
        let acked: Arc<Mutex<Acked>> = Arc::default();
        let mut tasks = Vec::new();
        for writer in 0..WRITERS {
            let (session, insert, stop, acked) =
                (session.clone(), insert.clone(), stop.clone(), acked.clone());
            tasks.push(tokio::spawn(async move {
                let mut seq = 0;
                while !stop.load(Ordering::Relaxed) {
                    let v = value(round, writer, seq);
                    if session
                        .execute_unpaged(&insert, (round, writer, seq, v))
                        .await
                        .is_err()
                    {
                        break;
                    }
                    acked
                        .lock()
                        .unwrap()
                        .entry((round, writer))
                        .or_default()
                        .push(seq);
                    seq += 1;
                }
            }));
        }
        let crash_after = Duration::from_millis(rand::rng().random_range(500..=2000));
        tokio::time::sleep(crash_after).await;
        node.kill9();
        // Anything acknowledged from here on would be a lie; nothing more can be.
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            t.abort();
            let _ = t.await;
        }
        drop(session);
        let acked = std::mem::take(&mut *acked.lock().unwrap());
        let n: usize = acked.values().map(Vec::len).sum();
        assert!(
            n > 0,
            "round {round}: no write was acknowledged in {crash_after:?}"
        );

        let took = node.restart();
        println!(
            "round {round}: killed after {crash_after:?} with {n} acknowledged writes; \
             restart to CQL ready: {took:?}"
        );
        start_times.push(took);
        assert!(
            took < MAX_START,
            "restart took {took:?}\n{}",
            node.stderr_tail()
        );
        for (k, seqs) in acked {
            acked_all.entry(k).or_default().extend(seqs);
        }

        // Every acknowledged write from this and all earlier rounds is back.
        let session = common::connect(&node).await;
        let select = session
            .prepare(format!(
                "SELECT seq, v FROM {ks}.t WHERE round = ? AND writer = ?"
            ))
            .await
            .expect("prepare select (schema must survive the crash too)");
        for (&(r, w), seqs) in &acked_all {
            let got: HashMap<i32, String> = session
                .execute_iter(select.clone(), (r, w))
                .await
                .expect("select")
                .rows_stream::<(i32, String)>()
                .unwrap()
                .try_collect::<Vec<_>>()
                .await
                .expect("read back")
                .into_iter()
                .collect();
            for &seq in seqs {
                match got.get(&seq) {
                    Some(v) => assert_eq!(v, &value(r, w, seq), "round {r} writer {w} seq {seq}"),
                    None => panic!(
                        "acknowledged write lost: round {r} writer {w} seq {seq} \
                         (found {} rows for that writer)\n{}",
                        got.len(),
                        node.stderr_tail()
                    ),
                }
            }
        }
    }
    let max = start_times.iter().max().unwrap();
    shoal_tests::record(&format!(
        "durability: restart after kill -9 to CQL ready: max {max:?} over {ROUNDS} crashes ({start_times:?})"
    ));

    // A clean shutdown exits 0 and loses nothing either.
    let status = node.terminate();
    assert!(
        status.success(),
        "SIGTERM shutdown exited with {status}\n{}",
        node.stderr_tail()
    );
    let took = node.restart();
    shoal_tests::record(&format!(
        "durability: restart after SIGTERM to CQL ready: {took:?}"
    ));
    assert!(took < MAX_START);
    let session = common::connect(&node).await;
    let (count,): (i64,) = session
        .query_unpaged(format!("SELECT COUNT(*) FROM {ks}.t"), ())
        .await
        .unwrap()
        .into_rows_result()
        .unwrap()
        .single_row()
        .unwrap();
    let acked_total: usize = acked_all.values().map(Vec::len).sum();
    assert!(
        count as usize >= acked_total,
        "{count} rows < {acked_total} acknowledged"
    );
}
