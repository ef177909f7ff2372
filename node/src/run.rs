//! Wiring: opens the engine and schema, starts the CQL server, and shuts down cleanly.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use shoal_cql::executor::{Executor, NodeInfo};
use shoal_cql::schema::persist::SchemaStore;
use shoal_cql::server::{self, ServerStats};
use shoal_engine::{Engine, EngineConfig};
use tokio::sync::watch;
use tracing::info;

use crate::config::Config;
use crate::identity;

/// Full class name of a snitch given by its short or full name.
fn snitch_class(name: &str) -> String {
    if name.contains('.') {
        name.to_string()
    } else {
        format!("org.apache.cassandra.locator.{name}")
    }
}

/// Runs a node until `shutdown` turns true.
pub async fn run(config: Config, mut shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
    let started = Instant::now();
    if !matches!(
        config.authenticator.as_str(),
        "AllowAllAuthenticator" | "PasswordAuthenticator"
    ) {
        anyhow::bail!(
            "authenticator {} is not supported: use AllowAllAuthenticator or PasswordAuthenticator",
            config.authenticator
        );
    }
    if config.authenticator == "AllowAllAuthenticator" && config.authorizer != "AllowAllAuthorizer"
    {
        anyhow::bail!(
            "{} can't be used with {}",
            config.authenticator,
            config.authorizer
        );
    }
    let system_dir = config.data_dir.join("system");
    std::fs::create_dir_all(&system_dir)
        .with_context(|| format!("creating {}", system_dir.display()))?;
    let local = identity::load_or_init(&config.data_dir, &config.cluster_name, config.num_tokens)?;
    info!(host_id = %local.host_id, tokens = local.tokens.len(), "node identity");

    let store = SchemaStore::new(&system_dir);
    let schema =
        Executor::load_schema(&store).map_err(|e| anyhow::anyhow!("loading schema: {e}"))?;
    let tables: Vec<_> = schema
        .stored_tables()
        .map(|t| (t.engine_id(), shoal_cql::executor::ddl::engine_options(t)))
        .collect();
    let engine_config = EngineConfig {
        data_dir: config
            .data_file_directories
            .first()
            .cloned()
            .unwrap_or_else(|| config.data_dir.join("data")),
        commitlog_dir: config.commitlog_directory.clone(),
        commitlog_sync: config.commitlog_sync,
        commitlog_segment_size: config.commitlog_segment_size,
        memtable_space_bytes: config.memtable_heap_space,
        skip_corrupt_commitlog_entries: config.skip_corrupt_commitlog_entries,
        tombstone_warn_threshold: config.tombstone_warn_threshold,
        tombstone_failure_threshold: config.tombstone_failure_threshold,
    };
    let engine = tokio::task::spawn_blocking(move || Engine::open(engine_config, tables))
        .await
        .context("engine start-up task")?
        .context("opening the storage engine")?;
    let engine = Arc::new(engine);

    let node = NodeInfo {
        cluster_name: config.cluster_name.clone(),
        host_id: local.host_id,
        tokens: local.tokens.clone(),
        listen_address: config.listen_address,
        broadcast_address: config.broadcast_address.unwrap_or(config.listen_address),
        rpc_address: config.broadcast_rpc_address.unwrap_or(config.rpc_address),
        native_port: config.native_transport_port,
        storage_port: config.storage_port,
        dc: config.dc.clone(),
        rack: config.rack.clone(),
        snitch: snitch_class(&config.endpoint_snitch),
        gossip_generation: (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)) as i32,
    };
    let mut auth = shoal_cql::auth::AuthConfig::new(&config.authenticator, &config.authorizer);
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    auth.default_superuser = env("SHOAL_SUPERUSER_NAME").unwrap_or(auth.default_superuser);
    auth.default_password = env("SHOAL_SUPERUSER_PASSWORD").unwrap_or(auth.default_password);
    let executor = Arc::new(Executor::new(engine.clone(), node, store, schema).with_auth(auth));
    executor
        .auth()
        .bootstrap(&executor)
        .await
        .map_err(|e| anyhow::anyhow!("setting up roles: {e}"))?;

    let addr = SocketAddr::new(config.rpc_address, config.native_transport_port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the CQL port {addr}"))?;
    info!(%addr, elapsed_ms = started.elapsed().as_millis() as u64, "Shoal node ready: CQL native transport on {addr}");
    let stats = Arc::new(ServerStats::default());
    let server = tokio::spawn(server::serve(
        listener,
        executor.clone(),
        shutdown.clone(),
        stats,
    ));

    while !*shutdown.borrow() {
        if shutdown.changed().await.is_err() {
            break;
        }
    }
    info!("shutting down");
    let _ = server.await;
    let engine2 = engine.clone();
    // Flush memtables so the next start replays nothing: restarts stay fast.
    tokio::task::spawn_blocking(move || {
        engine2.flush_all()?;
        engine2.shutdown()
    })
    .await
    .context("engine shutdown task")??;
    info!("shutdown complete");
    Ok(())
}
