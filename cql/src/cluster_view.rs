//! What the CQL layer needs to know about the other nodes of the cluster, without depending
//! on the gossip service: the node implements [`ClusterView`] and hands it to the executor
//! ([`Executor::set_cluster_view`](crate::executor::Executor::set_cluster_view)).

use std::net::IpAddr;

use uuid::Uuid;

/// One peer as system.peers and system.peers_v2 show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    /// The peer's broadcast (internode) address and port: `peer`, `peer_port`.
    pub peer: IpAddr,
    pub peer_port: u16,
    /// The address this node actually talks to it at: `preferred_ip`, `preferred_port`.
    pub preferred_ip: Option<IpAddr>,
    pub preferred_port: Option<u16>,
    pub host_id: Uuid,
    pub data_center: Option<String>,
    pub rack: Option<String>,
    pub tokens: Vec<i64>,
    /// Where clients reach it: `rpc_address` (peers), `native_address`/`native_port` (v2).
    pub rpc_address: Option<IpAddr>,
    pub native_port: Option<u16>,
    pub schema_version: Option<Uuid>,
    pub release_version: Option<String>,
    /// Whether the failure detector believes it up.
    pub alive: bool,
}

/// The cluster as this node sees it.
pub trait ClusterView: Send + Sync {
    /// Peers that belong in system.peers: known members with tokens that have not left,
    /// this node excluded, whether up or down.
    fn peers(&self) -> Vec<PeerInfo>;
}
