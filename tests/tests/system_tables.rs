//! The system tables every driver reads while connecting (see shared/cql-conformance.md §0
//! and §2): their shape and the values the drivers rely on.

mod common;

use std::net::IpAddr;

use scylla::errors::DbError;
use scylla::value::CqlValue;
use shoal_tests::Node;
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_local_describes_this_node() {
    let node = Node::start_default();
    let session = common::connect(&node).await;
    type Local = (
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<Uuid>,
        Option<IpAddr>,
        Option<Vec<String>>,
        Option<Uuid>,
        Option<String>,
        Option<String>,
    );
    let (
        key,
        cluster_name,
        release_version,
        cql_version,
        partitioner,
        host_id,
        rpc_address,
        tokens,
        schema_version,
        data_center,
        rack,
    ): Local = session
        .query_unpaged(
            "SELECT key, cluster_name, release_version, cql_version, partitioner, host_id, \
             rpc_address, tokens, schema_version, data_center, rack \
             FROM system.local WHERE key = 'local'",
            (),
        )
        .await
        .expect("system.local")
        .into_rows_result()
        .unwrap()
        .single_row()
        .expect("exactly one row with these column types");
    assert_eq!(key, "local");
    assert!(cluster_name.is_some_and(|c| !c.is_empty()));
    // Drivers pick their schema parser from the major version; cqlsh needs >= 4.
    let release = release_version.expect("release_version");
    let major: u32 = release.split('.').next().unwrap().parse().unwrap_or(0);
    assert!(major >= 4, "release_version {release:?}");
    let cql = cql_version.expect("cql_version");
    assert!(cql.starts_with("3.4."), "cql_version {cql:?}");
    // The python driver builds no token map unless this names a known partitioner.
    assert!(
        partitioner
            .as_deref()
            .is_some_and(|p| p.ends_with("Murmur3Partitioner")),
        "{partitioner:?}"
    );
    assert!(
        host_id.is_some(),
        "host_id is null: the scylla driver skips such rows"
    );
    if !node.is_external() {
        assert_eq!(
            rpc_address,
            Some(node.ip()),
            "rpc_address is where clients connect"
        );
    }
    let tokens = tokens.expect("tokens");
    assert!(!tokens.is_empty());
    for t in &tokens {
        t.parse::<i64>()
            .unwrap_or_else(|_| panic!("token {t:?} is not a decimal i64"));
    }
    assert!(schema_version.is_some());
    assert!(data_center.is_some() && rack.is_some());

    // A single node has no peers.
    let peers = session
        .query_unpaged(
            "SELECT peer, rpc_address, host_id, tokens FROM system.peers",
            (),
        )
        .await
        .expect("system.peers")
        .into_rows_result()
        .unwrap();
    assert_eq!(peers.rows_num(), 0);
    // peers_v2 is optional, but if it is missing it must say so with Invalid, which is the
    // only answer that makes drivers fall back to system.peers.
    match session
        .query_unpaged("SELECT * FROM system.peers_v2", ())
        .await
    {
        Ok(r) => assert_eq!(r.into_rows_result().unwrap().rows_num(), 0),
        Err(e) => assert!(
            matches!(common::db_error(&e), Some((DbError::Invalid, _))),
            "peers_v2: {e}"
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_schema_tables_all_answer() {
    let node = Node::start_default();
    let session = common::connect(&node).await;
    // cassandra-driver reads all nine at connect time; one missing table fails the connect.
    for table in [
        "keyspaces",
        "tables",
        "columns",
        "types",
        "functions",
        "aggregates",
        "triggers",
        "indexes",
        "views",
    ] {
        session
            .query_unpaged(format!("SELECT * FROM system_schema.{table}"), ())
            .await
            .unwrap_or_else(|e| panic!("system_schema.{table}: {e}"))
            .into_rows_result()
            .unwrap_or_else(|e| panic!("system_schema.{table}: {e}"));
    }

    let ks = common::create_keyspace(&session).await;
    common::exec(
        &session,
        format!(
            "CREATE TABLE {ks}.t (p text, c1 int, c2 timestamp, s int STATIC, v varchar, \
             PRIMARY KEY (p, c1, c2)) WITH CLUSTERING ORDER BY (c1 DESC, c2 ASC)"
        ),
    )
    .await;
    let mut cols: Vec<(String, String, i32, String, String)> = session
        .query_unpaged(
            "SELECT column_name, kind, position, clustering_order, type \
             FROM system_schema.columns WHERE keyspace_name = ? AND table_name = 't'",
            (&ks,),
        )
        .await
        .unwrap()
        .into_rows_result()
        .unwrap()
        .rows::<(String, String, i32, String, String)>()
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    cols.sort();
    let want = [
        ("c1", "clustering", 0, "desc", "int"),
        ("c2", "clustering", 1, "asc", "timestamp"),
        ("p", "partition_key", 0, "none", "text"),
        ("s", "static", -1, "none", "int"),
        // varchar is stored under its canonical name; the scylla driver cannot parse "varchar".
        ("v", "regular", -1, "none", "text"),
    ];
    let want: Vec<(String, String, i32, String, String)> = want
        .iter()
        .map(|(a, b, c, d, e)| {
            (
                a.to_string(),
                b.to_string(),
                *c,
                d.to_string(),
                e.to_string(),
            )
        })
        .collect();
    assert_eq!(cols, want);

    let (flags,): (Vec<String>,) = session
        .query_unpaged(
            "SELECT flags FROM system_schema.tables WHERE keyspace_name = ? AND table_name = 't'",
            (&ks,),
        )
        .await
        .unwrap()
        .into_rows_result()
        .unwrap()
        .single_row()
        .unwrap();
    // Without 'compound' cassandra-driver treats the table as COMPACT STORAGE.
    assert_eq!(flags, vec!["compound".to_string()]);

    let (replication, durable): (std::collections::HashMap<String, String>, bool) = session
        .query_unpaged(
            "SELECT replication, durable_writes FROM system_schema.keyspaces WHERE keyspace_name = ?",
            (&ks,),
        )
        .await
        .unwrap()
        .into_rows_result()
        .unwrap()
        .single_row()
        .unwrap();
    assert!(durable);
    assert!(
        replication["class"].ends_with("SimpleStrategy"),
        "{replication:?}"
    );
    assert_eq!(replication["replication_factor"], "1");

    // Untyped access still sees the system keyspaces.
    let names: Vec<CqlValue> = session
        .query_unpaged("SELECT keyspace_name FROM system_schema.keyspaces", ())
        .await
        .unwrap()
        .into_rows_result()
        .unwrap()
        .rows::<(CqlValue,)>()
        .unwrap()
        .map(|r| r.unwrap().0)
        .collect();
    for want in ["system", "system_schema", ks.as_str()] {
        assert!(
            names
                .iter()
                .any(|n| n.as_text().map(String::as_str) == Some(want)),
            "{want} missing from system_schema.keyspaces"
        );
    }
    common::cleanup(&node, &session, &ks).await;
}
