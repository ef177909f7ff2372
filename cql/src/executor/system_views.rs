//! Rows of the node's virtual tables: system.local, system.peers(_v2) and system_schema.*.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;

use super::select::RawRow;
use super::{CQL_VERSION, Executor, PARTITIONER, RELEASE_VERSION};
use crate::cluster_view::PeerInfo;
use crate::error::CqlResult;
use crate::schema::describe::ClusterInfo;
use crate::schema::{Schema, TableDef};
use crate::types::{Value, codec};

fn text(s: &str) -> Option<Bytes> {
    Some(codec::encode(&Value::Text(s.to_string())))
}

fn int(v: i32) -> Option<Bytes> {
    Some(Bytes::copy_from_slice(&v.to_be_bytes()))
}

fn inet(ip: std::net::IpAddr) -> Option<Bytes> {
    Some(codec::encode(&Value::Inet(ip)))
}

fn uuid(u: uuid::Uuid) -> Option<Bytes> {
    Some(Bytes::copy_from_slice(u.as_bytes()))
}

fn tokens(ts: &[i64]) -> Option<Bytes> {
    let mut items: Vec<String> = ts.iter().map(|t| t.to_string()).collect();
    items.sort();
    Some(codec::encode(&Value::Set(
        items.into_iter().map(Value::Text).collect(),
    )))
}

fn row_from(table: &TableDef, mut cells: HashMap<&str, Option<Bytes>>) -> RawRow {
    let n = table.columns.len();
    RawRow {
        values: table
            .columns
            .iter()
            .map(|c| cells.remove(c.name.as_str()).flatten())
            .collect(),
        writetimes: vec![None; n],
        ttls: vec![None; n],
    }
}

fn raw(table: &TableDef, values: Vec<Option<Bytes>>) -> RawRow {
    let n = table.columns.len();
    RawRow {
        values,
        writetimes: vec![None; n],
        ttls: vec![None; n],
    }
}

/// The peers system.peers lists, in primary-key order; none without a cluster view.
fn peers(ex: &Executor) -> Vec<PeerInfo> {
    let mut peers = ex.cluster_view().map(|v| v.peers()).unwrap_or_default();
    peers.retain(|p| !p.tokens.is_empty());
    peers.sort_by_key(|p| (p.peer, p.peer_port));
    peers
}

/// Every row of a virtual table, in primary-key order.
pub fn rows(ex: &Executor, schema: &Arc<Schema>, table: &TableDef) -> CqlResult<Vec<RawRow>> {
    let node = ex.node();
    Ok(match (table.keyspace.as_str(), table.name.as_str()) {
        ("system", "local") => {
            let cells: HashMap<&str, Option<Bytes>> = [
                ("key", text("local")),
                ("bootstrapped", text("COMPLETED")),
                ("broadcast_address", inet(node.broadcast_address)),
                ("broadcast_port", int(node.storage_port as i32)),
                ("cluster_name", text(&node.cluster_name)),
                ("cql_version", text(CQL_VERSION)),
                ("data_center", text(&node.dc)),
                ("gossip_generation", int(node.gossip_generation)),
                ("host_id", uuid(node.host_id)),
                ("listen_address", inet(node.listen_address)),
                ("listen_port", int(node.storage_port as i32)),
                ("native_protocol_version", text("5")),
                ("partitioner", text(PARTITIONER)),
                ("rack", text(&node.rack)),
                ("release_version", text(RELEASE_VERSION)),
                ("rpc_address", inet(node.rpc_address)),
                ("rpc_port", int(node.native_port as i32)),
                ("schema_version", uuid(schema.version)),
                ("tokens", tokens(&node.tokens)),
            ]
            .into_iter()
            .collect();
            vec![row_from(table, cells)]
        }
        ("system", "peers") => peers(ex)
            .iter()
            .map(|p| {
                let cells: HashMap<&str, Option<Bytes>> = [
                    ("peer", inet(p.peer)),
                    ("data_center", p.data_center.as_deref().and_then(text)),
                    ("host_id", uuid(p.host_id)),
                    ("preferred_ip", p.preferred_ip.and_then(inet)),
                    ("rack", p.rack.as_deref().and_then(text)),
                    (
                        "release_version",
                        p.release_version.as_deref().and_then(text),
                    ),
                    ("rpc_address", p.rpc_address.and_then(inet)),
                    ("schema_version", p.schema_version.and_then(uuid)),
                    ("tokens", tokens(&p.tokens)),
                ]
                .into_iter()
                .collect();
                row_from(table, cells)
            })
            .collect(),
        ("system", "peers_v2") => peers(ex)
            .iter()
            .map(|p| {
                let cells: HashMap<&str, Option<Bytes>> = [
                    ("peer", inet(p.peer)),
                    ("peer_port", int(p.peer_port as i32)),
                    ("data_center", p.data_center.as_deref().and_then(text)),
                    ("host_id", uuid(p.host_id)),
                    ("preferred_ip", p.preferred_ip.and_then(inet)),
                    (
                        "preferred_port",
                        p.preferred_port.and_then(|v| int(v as i32)),
                    ),
                    ("rack", p.rack.as_deref().and_then(text)),
                    (
                        "release_version",
                        p.release_version.as_deref().and_then(text),
                    ),
                    ("native_address", p.rpc_address.and_then(inet)),
                    ("native_port", p.native_port.and_then(|v| int(v as i32))),
                    ("schema_version", p.schema_version.and_then(uuid)),
                    ("tokens", tokens(&p.tokens)),
                ]
                .into_iter()
                .collect();
                row_from(table, cells)
            })
            .collect(),
        ("system", _) => Vec::new(),
        ("system_schema", name) => crate::schema::rows::system_schema_rows(schema, name)
            .into_iter()
            .map(|values| raw(table, values))
            .collect(),
        _ => Vec::new(),
    })
}

/// Replicas of every ring range (keyed by its end token) under `replication`, over this
/// node and the peers of the cluster view; `None` if the replication cannot be placed.
fn range_ownership(
    ex: &Executor,
    replication: &std::collections::BTreeMap<String, String>,
) -> Option<Vec<(String, Vec<String>)>> {
    use shoal_gossip::replication::{ReplicationStrategy, TokenMetadata};
    use shoal_gossip::ring::{HostId, HostInfo, Ring};
    let node = ex.node();
    let me = HostId(*node.host_id.as_bytes());
    let mut ring = Ring::new();
    let info = HostInfo {
        addr: std::net::SocketAddr::new(node.broadcast_address, node.storage_port),
        dc: node.dc.clone(),
        rack: node.rack.clone(),
    };
    ring.set_host(me, info, &node.tokens).ok()?;
    for p in peers(ex) {
        let info = HostInfo {
            addr: std::net::SocketAddr::new(p.peer, p.peer_port),
            dc: p.data_center.clone().unwrap_or_default(),
            rack: p.rack.clone().unwrap_or_default(),
        };
        // A peer whose tokens collide with another's is left out, as the gossiper's ring does.
        let _ = ring.set_host(HostId(*p.host_id.as_bytes()), info, &p.tokens);
    }
    let dcs: std::collections::BTreeSet<String> = ring.hosts().map(|(_, h)| h.dc.clone()).collect();
    let strategy =
        ReplicationStrategy::from_options(replication, dcs.iter().map(String::as_str)).ok()?;
    let meta = TokenMetadata::new(me, ring);
    Some(
        meta.ring()
            .tokens()
            .iter()
            .map(|(t, _)| {
                let endpoints = meta
                    .natural_replicas(&strategy, *t)
                    .iter()
                    .filter_map(|h| meta.ring().host(h))
                    .map(|h| crate::schema::describe::endpoint_string(h.addr))
                    .collect();
                (t.to_string(), endpoints)
            })
            .collect(),
    )
}

/// What DESCRIBE CLUSTER shows.
pub fn cluster_info(ex: &Executor, schema: &Schema, keyspace: Option<&str>) -> ClusterInfo {
    let node = ex.node();
    let user_ks =
        keyspace.filter(|k| !crate::schema::is_system_keyspace(k) && schema.keyspace(k).is_some());
    let endpoint = crate::schema::describe::endpoint_string(std::net::SocketAddr::new(
        node.broadcast_address,
        node.storage_port,
    ));
    let range_ownership = match user_ks.and_then(|k| schema.keyspace(k)) {
        Some(ks) => range_ownership(ex, &ks.replication).unwrap_or_else(|| {
            let mut ts = node.tokens.clone();
            ts.sort();
            ts.iter()
                .map(|t| (t.to_string(), vec![endpoint.clone()]))
                .collect()
        }),
        None => Vec::new(),
    };
    ClusterInfo {
        cluster_name: node.cluster_name.clone(),
        partitioner: PARTITIONER.to_string(),
        // Cassandra wraps the configured snitch in the dynamic snitch (dynamic_snitch: true).
        snitch: "org.apache.cassandra.locator.DynamicEndpointSnitch".to_string(),
        range_ownership,
    }
}
