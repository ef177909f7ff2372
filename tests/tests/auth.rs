//! PasswordAuthenticator + CassandraAuthorizer with the scylla driver: SASL PLAIN logins,
//! Cassandra's error codes and texts, GRANT/REVOKE taking effect, LIST output, roles and
//! grants surviving kill -9, and request tracing.

mod common;

use std::time::Duration;

use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::errors::DbError;
use scylla::statement::unprepared::Statement;
use shoal_tests::{Node, NodeOptions, skip_if_external};

const AUTH_YAML: &str = "authenticator: PasswordAuthenticator\nauthorizer: CassandraAuthorizer\n";

async fn login(node: &Node, user: &str, password: &str) -> Result<Session, String> {
    let builder = SessionBuilder::new()
        .known_node_addr(node.addr())
        .user(user, password)
        .connection_timeout(Duration::from_secs(5));
    match tokio::time::timeout(Duration::from_secs(30), builder.build()).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => Err("session build timed out".into()),
    }
}

/// Runs `cql` and returns the server's error code and message.
async fn refused(session: &Session, cql: &str) -> (DbError, String) {
    let err = session
        .query_unpaged(cql, ())
        .await
        .expect_err(&format!("{cql} should fail"));
    let (e, msg) = common::db_error(&err).unwrap_or_else(|| panic!("{cql}: {err}"));
    (e.clone(), msg.to_string())
}

async fn rows_text(session: &Session, cql: &str) -> Vec<Vec<String>> {
    let result = session
        .query_unpaged(cql, ())
        .await
        .unwrap_or_else(|e| panic!("{cql}: {e}"));
    if !result.is_rows() {
        return Vec::new();
    }
    let rows = result.into_rows_result().expect("rows");
    rows.rows::<scylla::value::Row>()
        .expect("typed rows")
        .map(|r| {
            r.expect("row")
                .columns
                .into_iter()
                .map(|c| match c {
                    Some(scylla::value::CqlValue::Text(s)) => s,
                    Some(scylla::value::CqlValue::Boolean(b)) => b.to_string(),
                    Some(other) => format!("{other:?}"),
                    None => "null".into(),
                })
                .collect()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_authentication_and_permissions() {
    let mut node = Node::start(NodeOptions::yaml(AUTH_YAML));
    skip_if_external!(node, "needs a node started with PasswordAuthenticator");

    // No credentials: the driver is told authentication is required.
    let err = common::try_connect(&node)
        .await
        .expect_err("a session without credentials must be refused");
    assert!(err.contains("Authentication is required"), "{err}");

    let err = login(&node, "cassandra", "wrong")
        .await
        .expect_err("wrong password");
    assert!(
        err.contains("Provided username cassandra and/or password are incorrect"),
        "{err}"
    );

    let admin = login(&node, "cassandra", "cassandra")
        .await
        .expect("default superuser");
    let ks = common::create_keyspace(&admin).await;
    common::exec(
        &admin,
        format!("CREATE TABLE {ks}.t (k int PRIMARY KEY, v int)"),
    )
    .await;
    common::exec(&admin, format!("INSERT INTO {ks}.t (k, v) VALUES (1, 10)")).await;
    common::exec(
        &admin,
        "CREATE ROLE app WITH PASSWORD = 'secret' AND LOGIN = true",
    )
    .await;

    let app = login(&node, "app", "secret").await.expect("app logs in");
    let select = format!("SELECT v FROM {ks}.t WHERE k = 1");
    let (code, msg) = refused(&app, &select).await;
    assert_eq!(code, DbError::Unauthorized);
    assert_eq!(
        msg,
        format!("User app has no SELECT permission on <table {ks}.t> or any of its parents")
    );

    common::exec(&admin, format!("GRANT SELECT ON KEYSPACE {ks} TO app")).await;
    assert_eq!(
        rows_text(&app, &select).await,
        vec![vec!["Int(10)".to_string()]]
    );
    let (code, _) = refused(&app, &format!("INSERT INTO {ks}.t (k, v) VALUES (2, 2)")).await;
    assert_eq!(code, DbError::Unauthorized);

    assert_eq!(
        rows_text(&admin, "LIST ALL PERMISSIONS OF app").await,
        vec![vec![
            "app".to_string(),
            "app".into(),
            format!("<keyspace {ks}>"),
            "SELECT".into()
        ]]
    );
    let roles = rows_text(&admin, "LIST ROLES").await;
    assert_eq!(roles.len(), 2, "{roles:?}");
    assert_eq!(roles[0][..3], ["app", "false", "true"]);
    assert_eq!(roles[1][..3], ["cassandra", "true", "true"]);

    common::exec(&admin, format!("REVOKE SELECT ON KEYSPACE {ks} FROM app")).await;
    let (code, _) = refused(&app, &select).await;
    assert_eq!(code, DbError::Unauthorized);

    // Roles and grants are rows of system_auth: they survive kill -9.
    common::exec(&admin, format!("GRANT MODIFY ON TABLE {ks}.t TO app")).await;
    drop(app);
    drop(admin);
    node.restart();
    let app = login(&node, "app", "secret")
        .await
        .expect("app logs in after restart");
    common::exec(&app, format!("INSERT INTO {ks}.t (k, v) VALUES (3, 3)")).await;
    let (code, _) = refused(&app, &select).await;
    assert_eq!(code, DbError::Unauthorized);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traced_query_has_events_from_one_node() {
    let node = Node::start_default();
    let session = common::connect(&node).await;
    let ks = common::create_keyspace(&session).await;
    common::exec(
        &session,
        format!("CREATE TABLE {ks}.t (k int PRIMARY KEY, v int)"),
    )
    .await;
    let mut stmt = Statement::new(format!("SELECT * FROM {ks}.t WHERE k = 1"));
    stmt.set_tracing(true);
    let result = session
        .query_unpaged(stmt, ())
        .await
        .expect("traced select");
    let id = result
        .tracing_id()
        .expect("the response carries a tracing id");
    let info = session.get_tracing_info(&id).await.expect("tracing info");
    assert!(info.duration.is_some());
    assert!(!info.events.is_empty());
    assert_eq!(info.nodes().len(), 1);
    common::cleanup(&node, &session, &ks).await;
}
