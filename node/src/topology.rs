//! What the coordinator needs to know about the cluster at one instant: the ring (tokens,
//! addresses, datacenters and racks of hosts in NORMAL, LEAVING or shutdown state) and
//! which hosts the failure detector believes alive. Membership publishes a new snapshot on
//! every change; readers take an `Arc` and never wait on gossip.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use shoal_gossip::replication::TokenMetadata;
use shoal_gossip::ring::{HostId, HostInfo, Ring};

/// One snapshot of the cluster.
#[derive(Debug)]
pub struct Topology {
    /// The ring and cached replica placement.
    pub metadata: TokenMetadata,
    /// Hosts believed alive (this node always is).
    pub alive: HashSet<HostId>,
}

impl Topology {
    /// A ring of this node alone, as a node is before gossip settles.
    pub fn single(local: HostId, info: HostInfo, tokens: &[i64]) -> Topology {
        let mut ring = Ring::new();
        // A node's own tokens never collide with an empty ring.
        let _ = ring.set_host(local, info, tokens);
        Topology {
            metadata: TokenMetadata::new(local, ring),
            alive: HashSet::from([local]),
        }
    }

    pub fn local(&self) -> HostId {
        self.metadata.local()
    }

    pub fn is_alive(&self, host: &HostId) -> bool {
        *host == self.local() || self.alive.contains(host)
    }

    pub fn address(&self, host: &HostId) -> Option<SocketAddr> {
        self.metadata.ring().host(host).map(|h| h.addr)
    }

    pub fn host(&self, host: &HostId) -> Option<&HostInfo> {
        self.metadata.ring().host(host)
    }

    /// The datacenter of this node.
    pub fn local_dc(&self) -> &str {
        self.host(&self.local()).map_or("", |h| h.dc.as_str())
    }
}

/// The current snapshot, swapped whole by membership.
#[derive(Debug)]
pub struct TopologyCell {
    current: RwLock<Arc<Topology>>,
}

impl TopologyCell {
    pub fn new(initial: Topology) -> Arc<TopologyCell> {
        Arc::new(TopologyCell {
            current: RwLock::new(Arc::new(initial)),
        })
    }

    pub fn get(&self) -> Arc<Topology> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn set(&self, t: Topology) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(t);
    }
}
