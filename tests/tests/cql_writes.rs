//! Writes through the scylla driver: collections updated element by element, UDTs (derived
//! serialization), counters and lightweight transactions. Expected results are what Apache
//! Cassandra 4.0 returns.

mod common;

use std::collections::{BTreeSet, HashMap, HashSet};

use scylla::client::session::Session;
use scylla::errors::DbError;
use scylla::serialize::row::SerializeRow;
use scylla::statement::batch::{Batch, BatchType};
use scylla::value::Counter;
use shoal_tests::Node;

use common::{cleanup, connect, create_keyspace, db_error, exec, rows};

async fn invalid(session: &Session, cql: &str, message: &str) {
    let err = session
        .query_unpaged(cql, ())
        .await
        .expect_err(&format!("{cql} should fail"));
    let (db, msg) = db_error(&err).unwrap_or_else(|| panic!("{cql}: not a server error: {err}"));
    assert_eq!(db, &DbError::Invalid, "{cql}: {msg}");
    assert!(
        msg.contains(message),
        "{cql}: got {msg:?}, want {message:?}"
    );
}

/// The `[applied]` column and the names of the result's columns.
async fn lwt(session: &Session, cql: &str, values: impl SerializeRow) -> (bool, Vec<String>) {
    let res = session
        .query_unpaged(cql, values)
        .await
        .unwrap_or_else(|e| panic!("{cql}\n  failed: {e}"))
        .into_rows_result()
        .unwrap_or_else(|e| panic!("{cql}: not rows: {e}"));
    let names: Vec<String> = res
        .column_specs()
        .iter()
        .map(|c| c.name().to_string())
        .collect();
    assert_eq!(names[0], "[applied]", "{cql}");
    let (applied,) = res
        .maybe_first_row::<(bool,)>()
        .ok()
        .flatten()
        .or_else(|| {
            // Rows with more columns: read only the first.
            res.rows::<scylla::value::Row>()
                .ok()?
                .next()?
                .ok()
                .and_then(|r| match r.columns.first() {
                    Some(Some(scylla::value::CqlValue::Boolean(b))) => Some((*b,)),
                    _ => None,
                })
        })
        .expect("[applied] value");
    (applied, names)
}

type Nested = HashMap<i32, Vec<BTreeSet<i32>>>;
/// `[applied]`, k, c, s, v
type NotApplied = (bool, i32, i32, Option<i32>, Option<i32>);

#[derive(Debug, Clone, PartialEq, scylla::SerializeValue, scylla::DeserializeValue)]
struct Addr {
    street: Option<String>,
    num: Option<i32>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collections_element_updates() {
    let node = Node::start_default();
    let session = connect(&node).await;
    let ks = create_keyspace(&session).await;
    exec(
        &session,
        format!(
            "CREATE TABLE {ks}.c (k int PRIMARY KEY, l list<int>, s set<text>, m map<text, int>, \
             fl frozen<list<int>>, nested map<int, frozen<list<frozen<set<int>>>>>)"
        ),
    )
    .await;
    let q = |s: &str| s.replace("{ks}", &ks);

    session
        .query_unpaged(
            q("INSERT INTO {ks}.c (k, l, s, m) VALUES (?, ?, ?, ?)"),
            (
                1,
                vec![1, 2, 3],
                HashSet::from(["a".to_string(), "b".to_string()]),
                HashMap::from([("x".to_string(), 1)]),
            ),
        )
        .await
        .unwrap();
    exec(&session, q("UPDATE {ks}.c SET l = [0] + l WHERE k = 1")).await;
    session
        .query_unpaged(q("UPDATE {ks}.c SET l = l + ? WHERE k = 1"), (vec![4, 5],))
        .await
        .unwrap();
    session
        .query_unpaged(q("UPDATE {ks}.c SET l[?] = ? WHERE k = 1"), (1, 10))
        .await
        .unwrap();
    exec(&session, q("UPDATE {ks}.c SET l = l - [3] WHERE k = 1")).await;
    exec(&session, q("DELETE l[0] FROM {ks}.c WHERE k = 1")).await;
    let (l,): (Vec<i32>,) =
        rows::<(Vec<i32>,)>(&session, &q("SELECT l FROM {ks}.c WHERE k = 1"), ()).await[0].clone();
    assert_eq!(l, vec![10, 2, 4, 5]);

    session
        .query_unpaged(
            q("UPDATE {ks}.c SET s = s + ?, m = m + ? WHERE k = 1"),
            (
                BTreeSet::from(["c".to_string()]),
                HashMap::from([("y".to_string(), 2)]),
            ),
        )
        .await
        .unwrap();
    exec(
        &session,
        q("UPDATE {ks}.c SET s = s - {'a'}, m['x'] = 7 WHERE k = 1"),
    )
    .await;
    exec(&session, q("DELETE m['y'] FROM {ks}.c WHERE k = 1")).await;
    let (s, m): (BTreeSet<String>, HashMap<String, i32>) =
        rows::<(BTreeSet<String>, HashMap<String, i32>)>(
            &session,
            &q("SELECT s, m FROM {ks}.c WHERE k = 1"),
            (),
        )
        .await[0]
            .clone();
    assert_eq!(s, BTreeSet::from(["b".to_string(), "c".to_string()]));
    assert_eq!(m, HashMap::from([("x".to_string(), 7)]));

    let nested: Nested = HashMap::from([(1, vec![BTreeSet::from([1, 2]), BTreeSet::from([3])])]);
    session
        .query_unpaged(
            q("INSERT INTO {ks}.c (k, nested, fl) VALUES (2, ?, ?)"),
            (&nested, vec![1, 2]),
        )
        .await
        .unwrap();
    let got: Vec<(Nested, Vec<i32>)> = rows(
        &session,
        &q("SELECT nested, fl FROM {ks}.c WHERE k = 2"),
        (),
    )
    .await;
    assert_eq!(got, vec![(nested, vec![1, 2])]);

    invalid(
        &session,
        &q("UPDATE {ks}.c SET l[9] = 1 WHERE k = 1"),
        "List index 9 out of bound, list has size 4",
    )
    .await;
    invalid(
        &session,
        &q("UPDATE {ks}.c SET l[0] = 1 WHERE k = 3"),
        "Attempted to set an element on a list which is null",
    )
    .await;
    invalid(
        &session,
        &q("UPDATE {ks}.c SET fl = fl + [1] WHERE k = 2"),
        "Invalid operation (fl = fl + [1]) for frozen collection column fl",
    )
    .await;
    cleanup(&node, &session, &ks).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udt_round_trip_and_field_updates() {
    let node = Node::start_default();
    let session = connect(&node).await;
    let ks = create_keyspace(&session).await;
    exec(
        &session,
        format!("CREATE TYPE {ks}.addr (street text, num int)"),
    )
    .await;
    exec(
        &session,
        format!("CREATE TABLE {ks}.u (k int PRIMARY KEY, u addr, fu frozen<addr>)"),
    )
    .await;
    let a = Addr {
        street: Some("main".into()),
        num: Some(1),
    };
    session
        .query_unpaged(
            format!("INSERT INTO {ks}.u (k, u, fu) VALUES (1, ?, ?)"),
            (&a, &a),
        )
        .await
        .unwrap();
    exec(&session, format!("UPDATE {ks}.u SET u.num = 2 WHERE k = 1")).await;
    exec(&session, format!("DELETE u.street FROM {ks}.u WHERE k = 1")).await;
    let got: Vec<(Addr, Addr)> = rows(
        &session,
        &format!("SELECT u, fu FROM {ks}.u WHERE k = 1"),
        (),
    )
    .await;
    assert_eq!(
        got,
        vec![(
            Addr {
                street: None,
                num: Some(2)
            },
            a.clone()
        )]
    );
    invalid(
        &session,
        &format!("UPDATE {ks}.u SET u.nope = 2 WHERE k = 1"),
        "UDT column u does not have a field named nope",
    )
    .await;
    invalid(
        &session,
        &format!("INSERT INTO {ks}.u (k, u) VALUES (2, {{street: 'x', nope: 1}})"),
        "Unknown field 'nope' in value of user defined type addr",
    )
    .await;
    cleanup(&node, &session, &ks).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_and_counter_batches() {
    let node = Node::start_default();
    let session = connect(&node).await;
    let ks = create_keyspace(&session).await;
    exec(
        &session,
        format!("CREATE TABLE {ks}.cnt (k int PRIMARY KEY, a counter, b counter)"),
    )
    .await;
    let inc = session
        .prepare(format!("UPDATE {ks}.cnt SET a = a + ? WHERE k = ?"))
        .await
        .unwrap();
    session
        .execute_unpaged(&inc, (Counter(5), 1))
        .await
        .unwrap();
    exec(
        &session,
        format!("UPDATE {ks}.cnt SET a = a - 2, b = b + 1 WHERE k = 1"),
    )
    .await;
    let mut batch = Batch::new(BatchType::Counter);
    batch.append_statement(inc.clone());
    batch.append_statement(inc.clone());
    session
        .batch(&batch, ((Counter(10), 1), (Counter(1), 2)))
        .await
        .unwrap();
    let got: Vec<(i32, Option<Counter>, Option<Counter>)> = rows(
        &session,
        &format!("SELECT k, a, b FROM {ks}.cnt WHERE k IN (1, 2)"),
        (),
    )
    .await;
    assert_eq!(
        got,
        vec![
            (1, Some(Counter(13)), Some(Counter(1))),
            (2, Some(Counter(1)), None)
        ]
    );
    invalid(
        &session,
        &format!("UPDATE {ks}.cnt SET a = 1 WHERE k = 1"),
        "Cannot set the value of counter column a",
    )
    .await;
    let mut logged = Batch::new(BatchType::Logged);
    logged.append_statement(inc.clone());
    let err = session
        .batch(&logged, ((Counter(1), 1),))
        .await
        .expect_err("counter in a logged batch");
    let (_, msg) = db_error(&err).expect("server error");
    assert_eq!(msg, "Cannot include a counter statement in a logged batch");
    cleanup(&node, &session, &ks).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lightweight_transactions() {
    let node = Node::start_default();
    let session = connect(&node).await;
    let ks = create_keyspace(&session).await;
    exec(
        &session,
        format!("CREATE TABLE {ks}.lw (k int, c int, v int, s int static, PRIMARY KEY (k, c))"),
    )
    .await;
    let ins = format!("INSERT INTO {ks}.lw (k, c, v) VALUES (?, ?, ?) IF NOT EXISTS");
    assert_eq!(
        lwt(&session, &ins, (1, 1, 1)).await,
        (true, vec!["[applied]".to_string()])
    );
    let (applied, names) = lwt(&session, &ins, (1, 1, 2)).await;
    assert!(!applied);
    assert_eq!(names, ["[applied]", "k", "c", "s", "v"]);
    let got: Vec<NotApplied> = rows(&session, &ins, (1, 1, 2)).await;
    assert_eq!(got, vec![(false, 1, 1, None, Some(1))]);

    let upd = format!("UPDATE {ks}.lw SET v = ? WHERE k = 1 AND c = 1 IF v = ?");
    assert!(lwt(&session, &upd, (3, 1)).await.0);
    let got: Vec<(bool, Option<i32>)> = rows(&session, &upd, (4, 1)).await;
    assert_eq!(got, vec![(false, Some(3))]);

    // Prepared: the result always carries its metadata.
    let prepared = session.prepare(upd.clone()).await.unwrap();
    let res = session
        .execute_unpaged(&prepared, (5, 3))
        .await
        .unwrap()
        .into_rows_result()
        .unwrap();
    assert_eq!(res.first_row::<(bool,)>().unwrap(), (true,));
    let res = session
        .execute_unpaged(&prepared, (6, 3))
        .await
        .unwrap()
        .into_rows_result()
        .unwrap();
    assert_eq!(
        res.first_row::<(bool, Option<i32>)>().unwrap(),
        (false, Some(5))
    );

    let (applied, names) = lwt(
        &session,
        &format!("DELETE FROM {ks}.lw WHERE k = 1 AND c = 9 IF EXISTS"),
        (),
    )
    .await;
    assert_eq!((applied, names), (false, vec!["[applied]".to_string()]));

    let mut batch = Batch::new(BatchType::Logged);
    batch.append_statement(upd.as_str());
    batch.append_statement(format!("INSERT INTO {ks}.lw (k, c, v) VALUES (1, 2, 2)").as_str());
    let res = session
        .batch(&batch, ((7, 1), ()))
        .await
        .unwrap()
        .into_rows_result()
        .unwrap();
    let got: Vec<(bool, i32, i32, Option<i32>)> = res.rows().unwrap().map(|r| r.unwrap()).collect();
    assert_eq!(got, vec![(false, 1, 1, Some(5))]);
    let res = session
        .batch(&batch, ((7, 5), ()))
        .await
        .unwrap()
        .into_rows_result()
        .unwrap();
    assert_eq!(res.first_row::<(bool,)>().unwrap(), (true,));
    let got: Vec<(i32, Option<i32>)> = rows(
        &session,
        &format!("SELECT c, v FROM {ks}.lw WHERE k = 1"),
        (),
    )
    .await;
    assert_eq!(got, vec![(1, Some(7)), (2, Some(2))]);

    invalid(
        &session,
        &format!("UPDATE {ks}.lw USING TIMESTAMP 1 SET v = 1 WHERE k = 1 AND c = 1 IF v = 1"),
        "Cannot provide custom timestamp for conditional updates",
    )
    .await;
    cleanup(&node, &session, &ks).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_lwt_increments_are_serialised() {
    let node = Node::start_default();
    let session = std::sync::Arc::new(connect(&node).await);
    let ks = create_keyspace(&session).await;
    exec(
        &session,
        format!("CREATE TABLE {ks}.t (k int PRIMARY KEY, v int)"),
    )
    .await;
    exec(&session, format!("INSERT INTO {ks}.t (k, v) VALUES (1, 0)")).await;
    let upd = session
        .prepare(format!("UPDATE {ks}.t SET v = ? WHERE k = 1 IF v = ?"))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let session = session.clone();
        let upd = upd.clone();
        let ks = ks.clone();
        tasks.push(tokio::spawn(async move {
            let mut wins = 0;
            for _ in 0..25 {
                let (cur,): (i32,) =
                    rows(&session, &format!("SELECT v FROM {ks}.t WHERE k = 1"), ()).await[0];
                let res = session
                    .execute_unpaged(&upd, (cur + 1, cur))
                    .await
                    .unwrap()
                    .into_rows_result()
                    .unwrap();
                let row = res
                    .rows::<scylla::value::Row>()
                    .unwrap()
                    .next()
                    .unwrap()
                    .unwrap();
                if row.columns[0] == Some(scylla::value::CqlValue::Boolean(true)) {
                    wins += 1;
                }
            }
            wins
        }));
    }
    let mut wins = 0;
    for t in tasks {
        wins += t.await.unwrap();
    }
    let (v,): (i32,) = rows(&session, &format!("SELECT v FROM {ks}.t WHERE k = 1"), ()).await[0];
    assert_eq!(
        v, wins,
        "every applied compare-and-set is counted exactly once"
    );
    cleanup(&node, &session, &ks).await;
}
