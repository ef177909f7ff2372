//! The storage engine through the node: with a small memtable, a load of 200,000 rows must
//! flush to SSTables on disk, compaction must keep their number bounded, and every row must
//! read back after kill -9 and a restart.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use shoal_tests::{Node, NodeOptions, record, skip_if_external};

const ROWS: i32 = 200_000;
const PARTITIONS: i32 = 200;

/// SSTable data files under the node's data directory.
fn sstables(dir: &Path) -> usize {
    fn walk(dir: &Path, n: &mut usize) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, n);
            } else if p
                .file_name()
                .and_then(|f| f.to_str())
                .is_some_and(|f| f.starts_with("sst-") && f.ends_with(".db"))
            {
                *n += 1;
            }
        }
    }
    let mut n = 0;
    walk(&dir.join("data"), &mut n);
    n
}

fn value(k: i32, c: i32) -> String {
    format!("value {k}/{c} {}", "v".repeat((c % 64) as usize))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_memtables_flush_compact_and_survive_kill_9() {
    let mut node = Node::start(NodeOptions::yaml(
        "commitlog_sync: batch\nmemtable_heap_space: 2MiB\n",
    ));
    skip_if_external!(node, "counts SSTable files and kills the process");
    let session = Arc::new(common::connect(&node).await);
    let ks = common::create_keyspace(&session).await;
    common::exec(
        &session,
        format!("CREATE TABLE {ks}.t (k int, c int, v text, PRIMARY KEY (k, c))"),
    )
    .await;
    let insert = Arc::new(
        session
            .prepare(format!("INSERT INTO {ks}.t (k, c, v) VALUES (?, ?, ?)"))
            .await
            .unwrap(),
    );

    let started = Instant::now();
    futures::stream::iter(0..ROWS)
        .map(|i| {
            let session = session.clone();
            let insert = insert.clone();
            async move {
                let (k, c) = (i % PARTITIONS, i / PARTITIONS);
                session
                    .execute_unpaged(&insert, (k, c, value(k, c)))
                    .await
                    .map(|_| ())
            }
        })
        .buffer_unordered(128)
        .try_collect::<Vec<()>>()
        .await
        .expect("every write is acknowledged");
    record(&format!(
        "storage: {ROWS} batch-mode inserts through the node in {:?}",
        started.elapsed()
    ));

    let flushed = sstables(node.data_dir());
    assert!(
        flushed > 1,
        "a 2 MiB memtable must have flushed a 200k-row load into several SSTables, found {flushed}"
    );

    // Compaction keeps the count bounded: size-tiered merges every 4 similar-sized tables.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut count = sstables(node.data_dir());
    while count > 12 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        count = sstables(node.data_dir());
    }
    record(&format!(
        "storage: {flushed} SSTables after the load, {count} after compaction settled"
    ));
    assert!(
        count <= 12,
        "compaction must bound the SSTable count, still {count}"
    );

    drop(session);
    node.kill9();
    let restart = node.restart();
    record(&format!(
        "storage: restart after kill -9 with {ROWS} rows on disk: CQL ready in {restart:?}"
    ));

    let session = common::connect(&node).await;
    let select = session
        .prepare(format!("SELECT c, v FROM {ks}.t WHERE k = ?"))
        .await
        .unwrap();
    let mut total = 0;
    for k in 0..PARTITIONS {
        let mut rows = session
            .execute_iter(select.clone(), (k,))
            .await
            .unwrap()
            .rows_stream::<(i32, String)>()
            .unwrap();
        let mut expect_c = 0;
        while let Some((c, v)) = rows.try_next().await.unwrap() {
            assert_eq!(
                c, expect_c,
                "partition {k}: rows in clustering order, none missing"
            );
            assert_eq!(v, value(k, c));
            expect_c += 1;
            total += 1;
        }
        assert_eq!(expect_c, ROWS / PARTITIONS, "partition {k} complete");
    }
    assert_eq!(total, ROWS);
}
