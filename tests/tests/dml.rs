//! Reads and writes through the scylla driver: prepared statements, paging, clustering
//! order, restrictions, TTL and timestamps, deletes, batches, `USE`, schema metadata and
//! token-aware routing. Expected results are what Apache Cassandra returns.

mod common;

use std::collections::BTreeSet;
use std::ops::ControlFlow;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use scylla::client::session::Session;
use scylla::cluster::metadata::{ColumnKind, Strategy};
use scylla::deserialize::row::DeserializeRow;
use scylla::errors::DbError;
use scylla::frame::response::result::{CollectionType, ColumnType, NativeType};
use scylla::response::PagingState;
use scylla::serialize::row::SerializeRow;
use scylla::statement::Statement;
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::prepared::PreparedStatement;
use shoal_tests::Node;

use common::{connect, create_keyspace, exec, rows};

/// All rows of an unprepared query with bound values (whole result in one response).
async fn count(session: &Session, cql: &str) -> i64 {
    let (n,): (i64,) = rows(session, cql, ()).await[0];
    n
}

/// Writes `n` rows with up to 64 requests in flight.
async fn insert_many<V, F>(session: &Session, stmt: &PreparedStatement, n: usize, values: F)
where
    V: SerializeRow,
    F: Fn(usize) -> V,
{
    futures::stream::iter(0..n)
        .map(|i| {
            let v = values(i);
            async move { session.execute_unpaged(stmt, v).await }
        })
        .buffer_unordered(64)
        .try_for_each(|_| async { Ok(()) })
        .await
        .expect("bulk insert");
}

/// Fetches every page by hand, checking that no page exceeds the page size.
/// Returns the rows and the number of pages.
async fn all_pages<T>(
    session: &Session,
    stmt: &PreparedStatement,
    page_size: i32,
) -> (Vec<T>, usize)
where
    T: for<'f, 'm> DeserializeRow<'f, 'm>,
{
    let mut stmt = stmt.clone();
    stmt.set_page_size(page_size);
    let mut state = PagingState::start();
    let mut out = Vec::new();
    let mut pages = 0;
    loop {
        let (res, next) = session
            .execute_single_page(&stmt, (), state)
            .await
            .expect("page");
        pages += 1;
        let res = res.into_rows_result().expect("rows");
        assert!(
            res.rows_num() <= page_size as usize,
            "page of {} rows for page size {page_size}",
            res.rows_num()
        );
        out.extend(res.rows::<T>().expect("typed").map(|r| r.expect("row")));
        match next.into_paging_control_flow() {
            ControlFlow::Break(()) => break,
            ControlFlow::Continue(s) => state = s,
        }
        assert!(pages < 100_000, "paging does not terminate");
    }
    (out, pages)
}

const N: usize = 10_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_in_one_partition_and_across_partitions() {
    let node = Node::start_default();
    let session = connect(&node).await;
    let ks = create_keyspace(&session).await;
    exec(
        &session,
        format!("CREATE TABLE {ks}.wide (pk int, ck int, v text, PRIMARY KEY (pk, ck))"),
    )
    .await;
    exec(
        &session,
        format!("CREATE TABLE {ks}.narrow (k int PRIMARY KEY, v bigint)"),
    )
    .await;

    let ins = session
        .prepare(format!(
            "INSERT INTO {ks}.wide (pk, ck, v) VALUES (?, ?, ?)"
        ))
        .await
        .unwrap();
    insert_many(&session, &ins, N, |i| (7_i32, i as i32, format!("v{i}"))).await;
    let ins = session
        .prepare(format!("INSERT INTO {ks}.narrow (k, v) VALUES (?, ?)"))
        .await
        .unwrap();
    insert_many(&session, &ins, N, |i| (i as i32, i as i64 * 3)).await;

    let wide = session
        .prepare(format!("SELECT ck, v FROM {ks}.wide WHERE pk = 7"))
        .await
        .unwrap();
    let narrow = session
        .prepare(format!("SELECT token(k), k, v FROM {ks}.narrow"))
        .await
        .unwrap();
    for page_size in [100, 500] {
        let (got, pages) = all_pages::<(i32, String)>(&session, &wide, page_size).await;
        assert_eq!(got.len(), N, "single partition, page size {page_size}");
        for (i, (ck, v)) in got.iter().enumerate() {
            assert_eq!((*ck as usize, v.as_str()), (i, format!("v{i}").as_str()));
        }
        let min_pages = N.div_ceil(page_size as usize);
        // Cassandra may end with one empty page when the last page was exactly full.
        assert!(
            (min_pages..=min_pages + 1).contains(&pages),
            "{pages} pages"
        );

        let (got, pages) = all_pages::<(i64, i32, i64)>(&session, &narrow, page_size).await;
        assert_eq!(got.len(), N, "across partitions, page size {page_size}");
        assert!(
            (min_pages..=min_pages + 1).contains(&pages),
            "{pages} pages"
        );
        let keys: BTreeSet<i32> = got.iter().map(|r| r.1).collect();
        assert_eq!(keys.len(), N, "a key was returned twice or not at all");
        assert!(got.iter().all(|(_, k, v)| *v == *k as i64 * 3));
        // A partition-range scan walks the ring: rows come in token order.
        assert!(
            got.windows(2).all(|w| w[0].0 <= w[1].0),
            "rows not in token order"
        );

        // The driver's own pager gives the same rows.
        let mut stmt = wide.clone();
        stmt.set_page_size(page_size);
        let streamed: Vec<(i32, String)> = session
            .execute_iter(stmt, ())
            .await
            .unwrap()
            .rows_stream::<(i32, String)>()
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        assert_eq!(streamed.len(), N);
        assert!(
            streamed
                .iter()
                .enumerate()
                .all(|(i, (ck, _))| *ck as usize == i)
        );
    }

    // Unprepared statements page too.
    let mut q = Statement::new(format!("SELECT k FROM {ks}.narrow"));
    q.set_page_size(333);
    let n = session
        .query_iter(q, ())
        .await
        .unwrap()
        .rows_stream::<(i32,)>()
        .unwrap()
        .try_fold(0usize, |n, _| async move { Ok(n + 1) })
        .await
        .unwrap();
    assert_eq!(n, N);

    assert_eq!(
        count(&session, &format!("SELECT COUNT(*) FROM {ks}.narrow")).await,
        N as i64
    );
    assert_eq!(
        count(
            &session,
            &format!("SELECT COUNT(*) FROM {ks}.wide WHERE pk = 7")
        )
        .await,
        N as i64
    );
    common::cleanup(&node, &session, &ks).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clustering_order_is_kept_and_order_by_reverses_it() {
    let node = Node::start_default();
    let session = connect(&node).await;
    let ks = create_keyspace(&session).await;
    exec(
        &session,
        format!("CREATE TABLE {ks}.up (pk int, ck int, v int, PRIMARY KEY (pk, ck))"),
    )
    .await;
    exec(
        &session,
        format!(
            "CREATE TABLE {ks}.down (pk int, ck int, v int, PRIMARY KEY (pk, ck)) \
             WITH CLUSTERING ORDER BY (ck DESC)"
        ),
    )
    .await;
    // Inserted out of order, with negative values, so byte order and signed order differ.
    let cks: Vec<i32> = vec![5, -3, 100, 0, -200, 42, 7, -1, 1, 99];
    let mut asc = cks.clone();
    asc.sort();
    let desc: Vec<i32> = asc.iter().rev().copied().collect();
    for t in ["up", "down"] {
        let ins = session
            .prepare(format!("INSERT INTO {ks}.{t} (pk, ck, v) VALUES (1, ?, ?)"))
            .await
            .unwrap();
        for ck in &cks {
            session.execute_unpaged(&ins, (ck, ck * 2)).await.unwrap();
        }
    }
    let ck_of = |rows: Vec<(i32,)>| rows.into_iter().map(|r| r.0).collect::<Vec<_>>();
    let q = |t: &str, order: &str| format!("SELECT ck FROM {ks}.{t} WHERE pk = 1 {order}");
    assert_eq!(ck_of(rows(&session, &q("up", ""), ()).await), asc);
    assert_eq!(ck_of(rows(&session, &q("down", ""), ()).await), desc);
    assert_eq!(
        ck_of(rows(&session, &q("up", "ORDER BY ck DESC"), ()).await),
        desc
    );
    assert_eq!(
        ck_of(rows(&session, &q("up", "ORDER BY ck ASC"), ()).await),
        asc
    );
    assert_eq!(
        ck_of(rows(&session, &q("down", "ORDER BY ck ASC"), ()).await),
        asc
    );
    assert_eq!(
        ck_of(rows(&session, &q("down", "ORDER BY ck DESC"), ()).await),
        desc
    );
    // Reversed and sliced, with LIMIT.
    assert_eq!(
        ck_of(
            rows(
                &session,
                &q("up", "AND ck >= 0 ORDER BY ck DESC LIMIT 3"),
                ()
            )
            .await
        ),
        vec![100, 99, 42]
    );
    assert_eq!(
        ck_of(rows(&session, &q("down", "AND ck < 5 LIMIT 2"), ()).await),
        vec![1, 0]
    );

    // Order survives paging in both directions.
    for (t, order, want) in [
        ("up", "ORDER BY ck DESC", &desc),
        ("down", "ORDER BY ck ASC", &asc),
    ] {
        let stmt = session.prepare(q(t, order)).await.unwrap();
        let (got, _) = all_pages::<(i32,)>(&session, &stmt, 3).await;
        assert_eq!(&ck_of(got), want, "{t} {order} paged by 3");
    }
    common::cleanup(&node, &session, &ks).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restrictions_limit_and_count() {
    let node = Node::start_default();
    let session = connect(&node).await;
    let ks = create_keyspace(&session).await;
    exec(
        &session,
        format!("CREATE TABLE {ks}.t (pk int, ck int, v text, PRIMARY KEY (pk, ck))"),
    )
    .await;
    let ins = session
        .prepare(format!("INSERT INTO {ks}.t (pk, ck, v) VALUES (?, ?, ?)"))
        .await
        .unwrap();
    for pk in 0..5 {
        for ck in 0..10 {
            session
                .execute_unpaged(&ins, (pk, ck, format!("{pk}/{ck}")))
                .await
                .unwrap();
        }
    }
    let pairs = |rows: Vec<(i32, i32)>| rows.into_iter().collect::<Vec<_>>();

    let got: BTreeSet<(i32, i32)> = rows::<(i32, i32)>(
        &session,
        &format!("SELECT pk, ck FROM {ks}.t WHERE pk IN (3, 1, 4) AND ck = 2"),
        (),
    )
    .await
    .into_iter()
    .collect();
    assert_eq!(got, BTreeSet::from([(1, 2), (3, 2), (4, 2)]));

    let got = rows::<(i32, i32)>(
        &session,
        &format!("SELECT pk, ck FROM {ks}.t WHERE pk IN (2, 0)"),
        (),
    )
    .await;
    assert_eq!(got.len(), 20);
    // Within each partition clustering order still holds.
    for pk in [0, 2] {
        let cks: Vec<i32> = got.iter().filter(|r| r.0 == pk).map(|r| r.1).collect();
        assert_eq!(cks, (0..10).collect::<Vec<_>>());
    }

    let slice = |cond: &str| format!("SELECT pk, ck FROM {ks}.t WHERE pk = 2 AND {cond}");
    assert_eq!(
        pairs(rows(&session, &slice("ck > 3 AND ck <= 7"), ()).await),
        vec![(2, 4), (2, 5), (2, 6), (2, 7)]
    );
    assert_eq!(
        pairs(rows(&session, &slice("ck >= ? AND ck < ?"), (8, 100)).await),
        vec![(2, 8), (2, 9)]
    );
    assert_eq!(
        pairs(rows(&session, &slice("ck IN (9, 0, 5)"), ()).await),
        vec![(2, 0), (2, 5), (2, 9)]
    );
    assert!(
        rows::<(i32, i32)>(&session, &slice("ck > 9"), ())
            .await
            .is_empty()
    );
    assert!(
        rows::<(i32, i32)>(&session, &slice("ck > 5 AND ck < 5"), ())
            .await
            .is_empty()
    );

    let limited =
        rows::<(i32, i32)>(&session, &format!("SELECT pk, ck FROM {ks}.t LIMIT 7"), ()).await;
    assert_eq!(limited.len(), 7);
    assert_eq!(
        pairs(
            rows(
                &session,
                &format!("SELECT pk, ck FROM {ks}.t WHERE pk = 4 LIMIT 3"),
                ()
            )
            .await
        ),
        vec![(4, 0), (4, 1), (4, 2)]
    );
    let per_partition = rows::<(i32, i32)>(
        &session,
        &format!("SELECT pk, ck FROM {ks}.t PER PARTITION LIMIT 2"),
        (),
    )
    .await;
    assert_eq!(per_partition.len(), 10);
    assert!(per_partition.iter().all(|r| r.1 < 2));

    assert_eq!(
        count(&session, &format!("SELECT COUNT(*) FROM {ks}.t")).await,
        50
    );
    assert_eq!(
        count(
            &session,
            &format!("SELECT COUNT(*) FROM {ks}.t WHERE pk = 3 AND ck >= 5")
        )
        .await,
        5
    );
    assert_eq!(
        count(
            &session,
            &format!("SELECT COUNT(*) FROM {ks}.t WHERE pk = 42")
        )
        .await,
        0
    );

    // Named bind markers in a prepared statement.
    let named = session
        .prepare(format!("SELECT v FROM {ks}.t WHERE pk = :p AND ck = :c"))
        .await
        .unwrap();
    let (v,): (String,) = session
        .execute_unpaged(&named, (1, 6))
        .await
        .unwrap()
        .into_rows_result()
        .unwrap()
        .single_row()
        .unwrap();
    assert_eq!(v, "1/6");
    common::cleanup(&node, &session, &ks).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_expires_and_older_timestamps_lose() {
    let node = Node::start_default();
    let session = connect(&node).await;
    let ks = create_keyspace(&session).await;
    exec(
        &session,
        format!("CREATE TABLE {ks}.t (k int PRIMARY KEY, v text, w text)"),
    )
    .await;

    exec(
        &session,
        format!("INSERT INTO {ks}.t (k, v) VALUES (1, 'short-lived') USING TTL 2"),
    )
    .await;
    exec(
        &session,
        format!("INSERT INTO {ks}.t (k, v) VALUES (2, 'forever')"),
    )
    .await;
    exec(
        &session,
        format!("UPDATE {ks}.t USING TTL 2 SET w = 'fading' WHERE k = 2"),
    )
    .await;
    let (v, ttl): (Option<String>, Option<i32>) = rows::<(Option<String>, Option<i32>)>(
        &session,
        &format!("SELECT v, TTL(v) FROM {ks}.t WHERE k = 1"),
        (),
    )
    .await[0]
        .clone();
    assert_eq!(v.as_deref(), Some("short-lived"));
    let ttl = ttl.expect("TTL(v) of a TTL'd cell is not null");
    assert!((1..=2).contains(&ttl), "TTL(v) = {ttl}");
    let (ttl,): (Option<i32>,) = rows(
        &session,
        &format!("SELECT TTL(v) FROM {ks}.t WHERE k = 2"),
        (),
    )
    .await[0];
    assert_eq!(ttl, None, "TTL of a cell written without TTL is null");

    tokio::time::sleep(Duration::from_millis(3_000)).await;
    assert!(
        rows::<(i32,)>(&session, &format!("SELECT k FROM {ks}.t WHERE k = 1"), ())
            .await
            .is_empty(),
        "row inserted with TTL 2 still visible after 3 s"
    );
    let left: Vec<(i32, Option<String>, Option<String>)> =
        rows(&session, &format!("SELECT k, v, w FROM {ks}.t"), ()).await;
    assert_eq!(left, vec![(2, Some("forever".into()), None)]);

    // Last write wins by timestamp, not by arrival order.
    exec(
        &session,
        format!("INSERT INTO {ks}.t (k, v) VALUES (3, 'new') USING TIMESTAMP 2000"),
    )
    .await;
    exec(
        &session,
        format!("INSERT INTO {ks}.t (k, v) VALUES (3, 'old') USING TIMESTAMP 1000"),
    )
    .await;
    exec(
        &session,
        format!("DELETE FROM {ks}.t USING TIMESTAMP 1500 WHERE k = 3"),
    )
    .await;
    let got: Vec<(String, i64)> = rows(
        &session,
        &format!("SELECT v, WRITETIME(v) FROM {ks}.t WHERE k = 3"),
        (),
    )
    .await;
    assert_eq!(got, vec![("new".to_string(), 2000)]);
    exec(
        &session,
        format!("UPDATE {ks}.t USING TIMESTAMP 3000 SET v = 'newer' WHERE k = 3"),
    )
    .await;
    let got: Vec<(String, i64)> = rows(
        &session,
        &format!("SELECT v, WRITETIME(v) FROM {ks}.t WHERE k = 3"),
        (),
    )
    .await;
    assert_eq!(got, vec![("newer".to_string(), 3000)]);
    exec(
        &session,
        format!("DELETE FROM {ks}.t USING TIMESTAMP 3001 WHERE k = 3"),
    )
    .await;
    assert!(
        rows::<(i32,)>(&session, &format!("SELECT k FROM {ks}.t WHERE k = 3"), ())
            .await
            .is_empty()
    );
    common::cleanup(&node, &session, &ks).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_and_truncate() {
    let node = Node::start_default();
    let session = connect(&node).await;
    let ks = create_keyspace(&session).await;
    exec(
        &session,
        format!("CREATE TABLE {ks}.t (pk int, ck int, a text, b text, PRIMARY KEY (pk, ck))"),
    )
    .await;
    let ins = session
        .prepare(format!(
            "INSERT INTO {ks}.t (pk, ck, a, b) VALUES (?, ?, 'a', 'b')"
        ))
        .await
        .unwrap();
    for pk in 0..3 {
        for ck in 0..10 {
            session.execute_unpaged(&ins, (pk, ck)).await.unwrap();
        }
    }
    let cks = |pk: i32| {
        let session = &session;
        let ks = &ks;
        async move {
            rows::<(i32,)>(
                session,
                &format!("SELECT ck FROM {ks}.t WHERE pk = {pk}"),
                (),
            )
            .await
            .into_iter()
            .map(|r| r.0)
            .collect::<Vec<_>>()
        }
    };

    exec(
        &session,
        format!("DELETE FROM {ks}.t WHERE pk = 0 AND ck = 4"),
    )
    .await;
    assert_eq!(cks(0).await, vec![0, 1, 2, 3, 5, 6, 7, 8, 9]);

    // Deleting a column keeps the row (INSERT wrote a row marker).
    exec(
        &session,
        format!("DELETE a FROM {ks}.t WHERE pk = 0 AND ck = 5"),
    )
    .await;
    let got: Vec<(Option<String>, Option<String>)> = rows(
        &session,
        &format!("SELECT a, b FROM {ks}.t WHERE pk = 0 AND ck = 5"),
        (),
    )
    .await;
    assert_eq!(got, vec![(None, Some("b".into()))]);

    exec(
        &session,
        format!("DELETE FROM {ks}.t WHERE pk = 1 AND ck >= 3 AND ck < 6"),
    )
    .await;
    assert_eq!(cks(1).await, vec![0, 1, 2, 6, 7, 8, 9]);
    exec(
        &session,
        format!("DELETE FROM {ks}.t WHERE pk = 1 AND ck > 7"),
    )
    .await;
    assert_eq!(cks(1).await, vec![0, 1, 2, 6, 7]);

    exec(&session, format!("DELETE FROM {ks}.t WHERE pk = 2")).await;
    assert!(cks(2).await.is_empty());
    assert_eq!(
        count(&session, &format!("SELECT COUNT(*) FROM {ks}.t")).await,
        9 + 5
    );

    exec(&session, format!("TRUNCATE {ks}.t")).await;
    assert_eq!(
        count(&session, &format!("SELECT COUNT(*) FROM {ks}.t")).await,
        0
    );
    session.execute_unpaged(&ins, (0, 0)).await.unwrap();
    assert_eq!(cks(0).await, vec![0], "table usable after TRUNCATE");
    exec(&session, format!("TRUNCATE TABLE {ks}.t")).await;
    assert_eq!(
        count(&session, &format!("SELECT COUNT(*) FROM {ks}.t")).await,
        0
    );
    common::cleanup(&node, &session, &ks).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logged_and_unlogged_batches() {
    let node = Node::start_default();
    let session = connect(&node).await;
    let ks = create_keyspace(&session).await;
    exec(
        &session,
        format!("CREATE TABLE {ks}.t (k int PRIMARY KEY, v text)"),
    )
    .await;
    let ins = session
        .prepare(format!("INSERT INTO {ks}.t (k, v) VALUES (?, ?)"))
        .await
        .unwrap();

    let mut logged = Batch::new(BatchType::Logged);
    logged.append_statement(ins.clone());
    logged.append_statement(ins.clone());
    logged.append_statement(format!("INSERT INTO {ks}.t (k, v) VALUES (3, 'three')").as_str());
    let upd = session
        .prepare(format!("UPDATE {ks}.t SET v = ? WHERE k = ?"))
        .await
        .unwrap();
    logged.append_statement(upd);
    session
        .batch(&logged, ((1, "one"), (2, "two"), (), ("four", 4)))
        .await
        .expect("logged batch");

    let mut unlogged = Batch::new(BatchType::Unlogged);
    for _ in 0..3 {
        unlogged.append_statement(ins.clone());
    }
    unlogged.append_statement(format!("DELETE FROM {ks}.t WHERE k = 1").as_str());
    session
        .batch(&unlogged, ((10, "ten"), (11, "eleven"), (10, "TEN"), ()))
        .await
        .expect("unlogged batch");

    let mut got: Vec<(i32, String)> = rows(&session, &format!("SELECT k, v FROM {ks}.t"), ()).await;
    got.sort();
    // Statements in one batch share a timestamp; on a timestamp tie Cassandra keeps the
    // greater value, so "ten" (0x74...) beats "TEN" (0x54...) whatever the order.
    let want: Vec<(i32, String)> = [
        (2, "two"),
        (3, "three"),
        (4, "four"),
        (10, "ten"),
        (11, "eleven"),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.to_string()))
    .collect();
    assert_eq!(got, want);

    // A batch with one invalid statement applies nothing.
    let mut bad = Batch::new(BatchType::Logged);
    bad.append_statement(ins.clone());
    bad.append_statement(format!("INSERT INTO {ks}.no_such_table (k, v) VALUES (1, 'x')").as_str());
    let err = session
        .batch(&bad, ((20, "twenty"), ()))
        .await
        .expect_err("batch touching a missing table");
    assert!(
        matches!(common::db_error(&err), Some((DbError::Invalid, _))),
        "expected Invalid, got {err}"
    );
    assert!(
        rows::<(i32,)>(&session, &format!("SELECT k FROM {ks}.t WHERE k = 20"), ())
            .await
            .is_empty()
    );

    // The CQL text form.
    exec(
        &session,
        format!(
            "BEGIN BATCH INSERT INTO {ks}.t (k, v) VALUES (30, 'a'); \
             INSERT INTO {ks}.t (k, v) VALUES (31, 'b'); APPLY BATCH"
        ),
    )
    .await;
    exec(
        &session,
        format!(
            "BEGIN UNLOGGED BATCH USING TIMESTAMP 5 UPDATE {ks}.t SET v = 'c' WHERE k = 32; \
             DELETE FROM {ks}.t WHERE k = 30 APPLY BATCH"
        ),
    )
    .await;
    let mut got: Vec<(i32, String)> = rows(
        &session,
        &format!("SELECT k, v FROM {ks}.t WHERE k IN (30, 31, 32)"),
        (),
    )
    .await;
    got.sort();
    // The DELETE at timestamp 5 is older than the INSERT of k=30, so k=30 survives.
    assert_eq!(
        got,
        vec![
            (30, "a".to_string()),
            (31, "b".to_string()),
            (32, "c".to_string())
        ]
    );
    common::cleanup(&node, &session, &ks).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn use_keyspace_then_unqualified_names() {
    let node = Node::start_default();
    let session = connect(&node).await;
    let ks = create_keyspace(&session).await;
    exec(&session, format!("USE {ks}")).await;
    assert_eq!(
        session.get_keyspace().as_deref().map(String::as_str),
        Some(ks.as_str())
    );
    exec(&session, "CREATE TABLE plain (k int PRIMARY KEY, v int)").await;
    exec(&session, "INSERT INTO plain (k, v) VALUES (1, 10)").await;
    let ins = session
        .prepare("INSERT INTO plain (k, v) VALUES (?, ?)")
        .await
        .unwrap();
    session.execute_unpaged(&ins, (2, 20)).await.unwrap();
    let mut got: Vec<(i32, i32)> = rows(&session, "SELECT k, v FROM plain", ()).await;
    got.sort();
    assert_eq!(got, vec![(1, 10), (2, 20)]);
    // The qualified name is the same table.
    assert_eq!(
        count(&session, &format!("SELECT COUNT(*) FROM {ks}.plain")).await,
        2
    );

    // A second session switches with the driver API instead.
    let other = connect(&node).await;
    other.use_keyspace(&ks, false).await.expect("use_keyspace");
    let got: Vec<(i32,)> = rows(&other, "SELECT v FROM plain WHERE k = 2", ()).await;
    assert_eq!(got, vec![(20,)]);

    let err = session
        .query_unpaged("USE no_such_keyspace_here", ())
        .await
        .expect_err("USE of a missing keyspace");
    assert!(
        matches!(common::db_error(&err), Some((DbError::Invalid, _))),
        "expected Invalid, got {err}"
    );
    common::cleanup(&node, &session, &ks).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn driver_schema_metadata_matches_ddl() {
    let node = Node::start_default();
    let session = connect(&node).await;
    let ks = create_keyspace(&session).await;
    exec(
        &session,
        format!(
            "CREATE TABLE {ks}.events (tenant int, day date, at timestamp, seq bigint, \
             kind text, payload blob, tags set<text>, attrs map<text, int>, history list<double>, \
             fixed frozen<list<int>>, owner text STATIC, \
             PRIMARY KEY ((tenant, day), at, seq)) WITH CLUSTERING ORDER BY (at DESC, seq ASC)"
        ),
    )
    .await;
    session.refresh_metadata().await.expect("refresh metadata");
    let state = session.get_cluster_state();
    let keyspace = state
        .get_keyspace(&ks)
        .expect("keyspace in driver metadata");
    assert!(
        matches!(
            keyspace.strategy,
            Strategy::SimpleStrategy {
                replication_factor: 1,
                ..
            }
        ),
        "{:?}",
        keyspace.strategy
    );
    assert!(keyspace.durable_writes);
    let table = keyspace
        .tables
        .get("events")
        .expect("table in driver metadata");
    assert_eq!(table.partition_key, vec!["tenant", "day"]);
    assert_eq!(table.clustering_key, vec!["at", "seq"]);
    let native = |t| ColumnType::Native(t);
    let want: Vec<(&str, ColumnKind, ColumnType)> = vec![
        ("tenant", ColumnKind::PartitionKey, native(NativeType::Int)),
        ("day", ColumnKind::PartitionKey, native(NativeType::Date)),
        ("at", ColumnKind::Clustering, native(NativeType::Timestamp)),
        ("seq", ColumnKind::Clustering, native(NativeType::BigInt)),
        ("kind", ColumnKind::Regular, native(NativeType::Text)),
        ("payload", ColumnKind::Regular, native(NativeType::Blob)),
        (
            "tags",
            ColumnKind::Regular,
            ColumnType::Collection {
                frozen: false,
                typ: CollectionType::Set(Box::new(native(NativeType::Text))),
            },
        ),
        (
            "attrs",
            ColumnKind::Regular,
            ColumnType::Collection {
                frozen: false,
                typ: CollectionType::Map(
                    Box::new(native(NativeType::Text)),
                    Box::new(native(NativeType::Int)),
                ),
            },
        ),
        (
            "history",
            ColumnKind::Regular,
            ColumnType::Collection {
                frozen: false,
                typ: CollectionType::List(Box::new(native(NativeType::Double))),
            },
        ),
        (
            "fixed",
            ColumnKind::Regular,
            ColumnType::Collection {
                frozen: true,
                typ: CollectionType::List(Box::new(native(NativeType::Int))),
            },
        ),
        ("owner", ColumnKind::Static, native(NativeType::Text)),
    ];
    assert_eq!(
        table.columns.len(),
        want.len(),
        "columns: {:?}",
        table.columns.keys()
    );
    for (name, kind, typ) in want {
        let col = table
            .columns
            .get(name)
            .unwrap_or_else(|| panic!("column {name} missing from metadata"));
        assert_eq!(col.kind, kind, "kind of {name}");
        assert_eq!(col.typ, typ, "type of {name}");
    }

    // Dropping the table removes it from the metadata.
    exec(&session, format!("DROP TABLE {ks}.events")).await;
    session.refresh_metadata().await.unwrap();
    let state = session.get_cluster_state();
    assert!(
        !state
            .get_keyspace(&ks)
            .unwrap()
            .tables
            .contains_key("events")
    );
    common::cleanup(&node, &session, &ks).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn driver_token_matches_server_token() {
    let node = Node::start_default();
    let session = connect(&node).await;
    let ks = create_keyspace(&session).await;
    exec(
        &session,
        format!("CREATE TABLE {ks}.single (k text PRIMARY KEY, v int)"),
    )
    .await;
    exec(
        &session,
        format!(
            "CREATE TABLE {ks}.multi (a int, b text, c bigint, v int, PRIMARY KEY ((a, b), c))"
        ),
    )
    .await;
    session.refresh_metadata().await.unwrap();

    // Bind markers deliberately not in primary-key order: the driver can only route if the
    // server reports which markers hold the partition key.
    let ins_single = session
        .prepare(format!("INSERT INTO {ks}.single (v, k) VALUES (?, ?)"))
        .await
        .unwrap();
    let ins_multi = session
        .prepare(format!(
            "INSERT INTO {ks}.multi (v, c, b, a) VALUES (?, ?, ?, ?)"
        ))
        .await
        .unwrap();
    let tok_single = session
        .prepare(format!("SELECT token(k) FROM {ks}.single WHERE k = ?"))
        .await
        .unwrap();
    let tok_multi = session
        .prepare(format!(
            "SELECT token(a, b) FROM {ks}.multi WHERE a = ? AND b = ?"
        ))
        .await
        .unwrap();

    // Non-ASCII keys have tail bytes >= 0x80, where Cassandra's Murmur3 differs from the
    // reference one.
    let keys = [
        "a",
        "hello",
        "ünïcødé",
        "日本語のキー",
        "0123456789abcdef",
        "fifteen-chars!!",
        "\u{80}\u{ff}",
    ];
    for (i, key) in keys.iter().enumerate() {
        let i = i as i32;
        let driver = ins_single
            .calculate_token(&(i, *key))
            .expect("serialize")
            .expect("prepared INSERT must carry partition key indexes");
        session
            .execute_unpaged(&ins_single, (i, *key))
            .await
            .unwrap();
        let (server,): (i64,) = session
            .execute_unpaged(&tok_single, (*key,))
            .await
            .unwrap()
            .into_rows_result()
            .unwrap()
            .single_row()
            .unwrap();
        assert_eq!(driver.value(), server, "token of text key {key:?}");
        let by_metadata = session
            .get_cluster_state()
            .compute_token(&ks, "single", &(*key,))
            .unwrap();
        assert_eq!(by_metadata.value(), server);

        let driver = ins_multi
            .calculate_token(&(i, i as i64, *key, i * 1000))
            .unwrap()
            .expect("composite partition key indexes");
        session
            .execute_unpaged(&ins_multi, (i, i as i64, *key, i * 1000))
            .await
            .unwrap();
        let (server,): (i64,) = session
            .execute_unpaged(&tok_multi, (i * 1000, *key))
            .await
            .unwrap()
            .into_rows_result()
            .unwrap()
            .single_row()
            .unwrap();
        assert_eq!(driver.value(), server, "token of ({}, {key:?})", i * 1000);
    }
    // Statements without a full partition key are not routable.
    let scan = session
        .prepare(format!("SELECT v FROM {ks}.single"))
        .await
        .unwrap();
    assert_eq!(scan.calculate_token(&()).unwrap(), None);
    common::cleanup(&node, &session, &ks).await;
}
