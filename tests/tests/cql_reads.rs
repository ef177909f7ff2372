//! Reads through the scylla driver: SELECT JSON / INSERT JSON, secondary indexes kept
//! consistent through updates and deletes (with paging through index hits), GROUP BY with
//! paging, multi-column slices on mixed-order clustering, prepared metadata of aggregates
//! and refusals without ALLOW FILTERING. Expected results are what Apache Cassandra returns.

mod common;

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use scylla::client::session::Session;
use scylla::deserialize::row::DeserializeRow;
use scylla::errors::DbError;
use scylla::response::PagingState;
use shoal_tests::Node;

use common::{connect, create_keyspace, exec, rows};

const FILTERING: &str = "Cannot execute this query as it might involve data filtering and thus may have unpredictable performance. If you want to execute this query despite the performance unpredictability, use ALLOW FILTERING";

/// Every page of a prepared statement, `page_size` rows at a time.
async fn paged<T>(session: &Session, cql: &str, page_size: i32) -> Vec<T>
where
    T: for<'f, 'm> DeserializeRow<'f, 'm>,
{
    let mut stmt = session.prepare(cql).await.expect("prepare");
    stmt.set_page_size(page_size);
    let mut state = PagingState::start();
    let mut out = Vec::new();
    for _ in 0..10_000 {
        let (res, next) = session
            .execute_single_page(&stmt, (), state)
            .await
            .unwrap_or_else(|e| panic!("{cql}: {e}"));
        let res = res.into_rows_result().expect("rows");
        assert!(res.rows_num() <= page_size as usize);
        out.extend(res.rows::<T>().expect("typed").map(|r| r.expect("row")));
        match next.into_paging_control_flow() {
            ControlFlow::Break(()) => return out,
            ControlFlow::Continue(s) => state = s,
        }
    }
    panic!("paging does not terminate");
}

async fn refused(session: &Session, cql: &str, text: &str) {
    let err = session
        .query_unpaged(cql, ())
        .await
        .expect_err("the statement should be refused");
    match common::db_error(&err) {
        Some((DbError::Invalid, msg)) => assert!(msg.contains(text), "{cql}: {msg}"),
        other => panic!("{cql}: unexpected error {other:?} ({err})"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_select_insert_and_functions() {
    let node = Node::start_default();
    let session = connect(&node).await;
    let ks = create_keyspace(&session).await;
    exec(
        &session,
        format!(
            "CREATE TABLE {ks}.j (k int PRIMARY KEY, t text, b blob, ts timestamp, l list<int>, m map<text, int>, tu tuple<int, text>, d double)"
        ),
    )
    .await;
    exec(
        &session,
        format!(
            "INSERT INTO {ks}.j JSON '{{\"k\": 1, \"t\": \"x\", \"b\": \"0xcafe\", \"ts\": \"2024-01-01 00:00:00.000Z\", \"l\": [3, 1], \"m\": {{\"a\": 1}}, \"tu\": [1, null], \"d\": 0.5}}'"
        ),
    )
    .await;
    let got: Vec<(String,)> = rows(&session, &format!("SELECT JSON * FROM {ks}.j"), ()).await;
    assert_eq!(
        got[0].0,
        r#"{"k": 1, "b": "0xcafe", "d": 0.5, "t": "x", "ts": "2024-01-01 00:00:00.000Z", "tu": [1, null], "l": [3, 1], "m": {"a": 1}}"#
    );
    // Prepared metadata: one text column named [json]; toJson is named as Cassandra does.
    let p = session
        .prepare(format!("SELECT JSON k, t FROM {ks}.j WHERE k = ?"))
        .await
        .unwrap();
    let specs = p.get_current_result_set_col_specs();
    let names: Vec<String> = specs.get().iter().map(|c| c.name().to_string()).collect();
    assert_eq!(names, vec!["[json]"]);
    let p = session
        .prepare(format!("SELECT toJson(l) FROM {ks}.j"))
        .await
        .unwrap();
    let specs = p.get_current_result_set_col_specs();
    assert_eq!(
        specs.get().get_by_index(0).map(|c| c.name()),
        Some("system.tojson(l)")
    );
    refused(
        &session,
        &format!("INSERT INTO {ks}.j JSON '{{\"k\": 2, \"nope\": 1}}'"),
        "JSON values map contains unrecognized column: nope",
    )
    .await;
    exec(
        &session,
        format!("INSERT INTO {ks}.j (k, l) VALUES (3, fromJson('[7, 8]'))"),
    )
    .await;
    let got: Vec<(Vec<i32>,)> =
        rows(&session, &format!("SELECT l FROM {ks}.j WHERE k = 3"), ()).await;
    assert_eq!(got, vec![(vec![7, 8],)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secondary_indexes_stay_consistent() {
    let node = Node::start_default();
    let session = connect(&node).await;
    let ks = create_keyspace(&session).await;
    exec(
        &session,
        format!("CREATE TABLE {ks}.t (k int, c int, v int, s set<text>, PRIMARY KEY (k, c))"),
    )
    .await;
    let ins = session
        .prepare(format!(
            "INSERT INTO {ks}.t (k, c, v, s) VALUES (?, ?, ?, ?)"
        ))
        .await
        .unwrap();
    for k in 0..20 {
        for c in 0..5 {
            let tags: Vec<String> = vec![format!("t{}", c % 2)];
            session
                .execute_unpaged(&ins, (k, c, c % 3, tags))
                .await
                .unwrap();
        }
    }
    refused(
        &session,
        &format!("SELECT * FROM {ks}.t WHERE v = 1"),
        FILTERING,
    )
    .await;
    exec(&session, format!("CREATE INDEX ON {ks}.t (v)")).await;
    exec(&session, format!("CREATE INDEX tags ON {ks}.t (s)")).await;
    exec(
        &session,
        format!("CREATE INDEX IF NOT EXISTS tags ON {ks}.t (s)"),
    )
    .await;

    // 20 partitions × c in {1, 4}: paged through the index, 7 rows a page.
    let hits: Vec<(i32, i32)> =
        paged(&session, &format!("SELECT k, c FROM {ks}.t WHERE v = 1"), 7).await;
    assert_eq!(hits.len(), 40);
    assert_eq!(hits.iter().collect::<BTreeSet<_>>().len(), 40);

    exec(
        &session,
        format!("UPDATE {ks}.t SET v = 9 WHERE k = 0 AND c = 1"),
    )
    .await;
    exec(
        &session,
        format!("DELETE FROM {ks}.t WHERE k = 1 AND c = 4"),
    )
    .await;
    exec(&session, format!("DELETE FROM {ks}.t WHERE k = 2")).await;
    exec(
        &session,
        format!("DELETE v FROM {ks}.t WHERE k = 3 AND c = 1"),
    )
    .await;
    let hits: Vec<(i32, i32)> = rows(
        &session,
        &format!("SELECT k, c FROM {ks}.t WHERE v = 1"),
        (),
    )
    .await;
    assert_eq!(hits.len(), 40 - 4 - 1);
    assert!(!hits.contains(&(0, 1)) && !hits.contains(&(1, 4)) && !hits.contains(&(3, 1)));
    let hits: Vec<(i32, i32)> = rows(
        &session,
        &format!("SELECT k, c FROM {ks}.t WHERE v = 9"),
        (),
    )
    .await;
    assert_eq!(hits, vec![(0, 1)]);

    let n = rows::<(i32, i32)>(
        &session,
        &format!("SELECT k, c FROM {ks}.t WHERE s CONTAINS 't1'"),
        (),
    )
    .await
    .len();
    // c in {1, 3} of the 19 partitions left.
    assert_eq!(n, 19 * 2);
    exec(
        &session,
        format!("UPDATE {ks}.t SET s = s - {{'t1'}} WHERE k = 4 AND c = 3"),
    )
    .await;
    let n2 = rows::<(i32, i32)>(
        &session,
        &format!("SELECT k, c FROM {ks}.t WHERE s CONTAINS 't1'"),
        (),
    )
    .await
    .len();
    assert_eq!(n2, n - 1);

    // An index with another partition restriction, and with another filter.
    let hits: Vec<(i32, i32)> = rows(
        &session,
        &format!("SELECT k, c FROM {ks}.t WHERE k = 5 AND v = 2"),
        (),
    )
    .await;
    assert_eq!(hits, vec![(5, 2)]);
    refused(
        &session,
        &format!("SELECT * FROM {ks}.t WHERE v = 2 AND s CONTAINS 't0'"),
        FILTERING,
    )
    .await;

    // Survives a restart.
    drop(session);
    let mut node = node;
    node.restart();
    let session = connect(&node).await;
    let hits: Vec<(i32, i32)> = rows(
        &session,
        &format!("SELECT k, c FROM {ks}.t WHERE v = 9"),
        (),
    )
    .await;
    assert_eq!(hits, vec![(0, 1)]);

    refused(
        &session,
        &format!("CREATE INDEX ON {ks}.t (k)"),
        "Cannot create secondary index on the only partition key column k",
    )
    .await;
    exec(&session, format!("DROP INDEX {ks}.t_v_idx")).await;
    refused(
        &session,
        &format!("SELECT * FROM {ks}.t WHERE v = 1"),
        FILTERING,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_by_slices_and_aggregates() {
    let node = Node::start_default();
    let session = connect(&node).await;
    let ks = create_keyspace(&session).await;
    exec(
        &session,
        format!("CREATE TABLE {ks}.g (k int, a int, b int, v int, PRIMARY KEY (k, a, b)) WITH CLUSTERING ORDER BY (a ASC, b DESC)"),
    )
    .await;
    let ins = session
        .prepare(format!(
            "INSERT INTO {ks}.g (k, a, b, v) VALUES (?, ?, ?, ?)"
        ))
        .await
        .unwrap();
    for k in 0..3 {
        for a in 0..4 {
            for b in 0..3 {
                session.execute_unpaged(&ins, (k, a, b, b)).await.unwrap();
            }
        }
    }
    // GROUP BY with paging: one row per group, pages of 2.
    let groups: Vec<(i32, i32, i64, i32)> = paged(
        &session,
        &format!("SELECT k, a, count(*), sum(v) FROM {ks}.g WHERE k = 1 GROUP BY k, a"),
        2,
    )
    .await;
    assert_eq!(groups, (0..4).map(|a| (1, a, 3, 3)).collect::<Vec<_>>());
    let p = session
        .prepare(format!("SELECT k, count(*), max(v) FROM {ks}.g GROUP BY k"))
        .await
        .unwrap();
    let specs = p.get_current_result_set_col_specs();
    let names: Vec<String> = specs.get().iter().map(|c| c.name().to_string()).collect();
    assert_eq!(names, vec!["k", "count", "system.max(v)"]);

    // Mixed ASC/DESC multi-column slice, in storage order.
    let got: Vec<(i32, i32)> = rows(
        &session,
        &format!("SELECT a, b FROM {ks}.g WHERE k = 0 AND (a, b) > (2, 1)"),
        (),
    )
    .await;
    assert_eq!(got, vec![(2, 2), (3, 2), (3, 1), (3, 0)]);
    let got: Vec<(i32, i32)> = paged(
        &session,
        &format!("SELECT a, b FROM {ks}.g WHERE k = 0 AND (a, b) >= (0, 1) AND (a, b) <= (1, 1)"),
        2,
    )
    .await;
    assert_eq!(got, vec![(0, 2), (0, 1), (1, 1), (1, 0)]);

    refused(
        &session,
        &format!("SELECT * FROM {ks}.g WHERE v = 1"),
        FILTERING,
    )
    .await;
    let got: Vec<(i32,)> = rows(
        &session,
        &format!("SELECT k FROM {ks}.g WHERE v = 2 AND a = 0 ALLOW FILTERING"),
        (),
    )
    .await;
    assert_eq!(got.len(), 3);
    let got: Vec<(i32, i32)> = rows(
        &session,
        &format!("SELECT k, a FROM {ks}.g PER PARTITION LIMIT 1"),
        (),
    )
    .await;
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|(_, a)| *a == 0));
}
