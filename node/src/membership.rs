//! Membership as clients and operators see it: system.peers from gossip ([`GossipView`]),
//! CQL `TOPOLOGY_CHANGE`/`STATUS_CHANGE` events from gossip events ([`EventTracker`]), the
//! gossip SCHEMA and LOAD states kept current, run-time seeds from discovery, and the ring
//! for the admin `/ring` endpoint and `shoal status` ([`ring_json`]).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use shoal_cql::cluster_view::{ClusterView, PeerInfo};
use shoal_cql::executor::Executor;
use shoal_cql::protocol::Event;
use shoal_engine::Engine;
use shoal_gossip::gossiper::GossipEvent;
use shoal_gossip::replication::{ReplicationStrategy, TokenMetadata};
use shoal_gossip::ring::{HostId, HostInfo};
use shoal_gossip::state::{AppKey, Status};
use tokio::sync::{broadcast, watch};
use tracing::{debug, info};

use crate::cluster::{GossipService, PeerView};
use crate::topology::{Topology, TopologyCell};

/// system.peers from the gossip service.
pub struct GossipView(pub Arc<GossipService>);

impl ClusterView for GossipView {
    fn peers(&self) -> Vec<PeerInfo> {
        self.0.peers().iter().filter_map(peer_info).collect()
    }
}

/// Where clients reach a peer: its NATIVE_ADDRESS (`ip:port`).
fn native_of(p: &PeerView) -> Option<SocketAddr> {
    p.native_address.as_deref()?.parse().ok()
}

/// A peer's system.peers row, if it belongs there: a known internode address, tokens, and a
/// status that puts it on the ring (NORMAL, LEAVING, or shut down but still a member).
pub fn peer_info(p: &PeerView) -> Option<PeerInfo> {
    let internode = p.internode?;
    if p.tokens.is_empty() {
        return None;
    }
    match p.status.as_deref().map(Status::parse) {
        Some(Status::Normal | Status::Leaving | Status::Shutdown) => {}
        _ => return None,
    }
    let native = native_of(p);
    let rpc = native
        .map(|a| a.ip())
        .or_else(|| p.rpc_address.as_deref()?.parse::<IpAddr>().ok());
    Some(PeerInfo {
        peer: internode.ip(),
        peer_port: internode.port(),
        preferred_ip: Some(internode.ip()),
        preferred_port: Some(internode.port()),
        host_id: uuid::Uuid::from_bytes(p.host_id.0),
        data_center: p.dc.clone(),
        rack: p.rack.clone(),
        tokens: p.tokens.clone(),
        rpc_address: rpc,
        native_port: native.map(|a| a.port()),
        schema_version: p.schema_version.as_deref().and_then(|s| s.parse().ok()),
        release_version: p.release_version.clone(),
        alive: p.alive,
    })
}

#[derive(Clone, Debug)]
struct Announced {
    native: SocketAddr,
    tokens: Vec<i64>,
    up: bool,
}

/// Turns the gossip view of each peer into the CQL events drivers expect, as Cassandra's
/// `Server.EventNotifier` does: `NEW_NODE` (then `UP`) only once a peer is ready for CQL
/// (STATUS NORMAL, native address known, alive), `DOWN`/`UP` as it stops or resumes being
/// so, `MOVED_NODE` when its tokens change, `REMOVED_NODE` when it leaves or is removed.
/// Addresses are the peer's native address (rpc address + native port).
#[derive(Debug, Default)]
pub struct EventTracker {
    hosts: HashMap<HostId, Announced>,
}

impl EventTracker {
    /// The events for `host`'s current view (`None`: gossip forgot it).
    pub fn update(&mut self, host: HostId, view: Option<&PeerView>) -> Vec<Event> {
        let mut out = Vec::new();
        let left =
            view.is_none_or(|v| v.status.as_deref().map(Status::parse) == Some(Status::Left));
        if left {
            if let Some(a) = self.hosts.remove(&host) {
                out.push(Event::TopologyChange {
                    change: "REMOVED_NODE",
                    address: a.native,
                });
            }
            return out;
        }
        let v = view.expect("checked above");
        let normal = v.status.as_deref().map(Status::parse) == Some(Status::Normal);
        let native = native_of(v);
        let ready = v.alive && normal && native.is_some();
        match self.hosts.get_mut(&host) {
            None => {
                if let (true, Some(native)) = (ready, native) {
                    out.push(Event::TopologyChange {
                        change: "NEW_NODE",
                        address: native,
                    });
                    out.push(Event::StatusChange {
                        change: "UP",
                        address: native,
                    });
                    self.hosts.insert(
                        host,
                        Announced {
                            native,
                            tokens: v.tokens.clone(),
                            up: true,
                        },
                    );
                }
            }
            Some(a) => {
                if let Some(n) = native
                    && n != a.native
                {
                    // Same host, new address: drivers key nodes by address.
                    out.push(Event::TopologyChange {
                        change: "REMOVED_NODE",
                        address: a.native,
                    });
                    out.push(Event::TopologyChange {
                        change: "NEW_NODE",
                        address: n,
                    });
                    a.native = n;
                }
                if normal && !v.tokens.is_empty() && v.tokens != a.tokens {
                    a.tokens = v.tokens.clone();
                    out.push(Event::TopologyChange {
                        change: "MOVED_NODE",
                        address: a.native,
                    });
                }
                if ready != a.up {
                    a.up = ready;
                    out.push(Event::StatusChange {
                        change: if ready { "UP" } else { "DOWN" },
                        address: a.native,
                    });
                }
            }
        }
        out
    }
}

fn event_host(e: &GossipEvent) -> Option<HostId> {
    match e {
        GossipEvent::NodeJoined { host, .. }
        | GossipEvent::NodeUp { host, .. }
        | GossipEvent::NodeDown { host, .. }
        | GossipEvent::NodeAddressChanged { host, .. }
        | GossipEvent::StateChanged { host, .. }
        | GossipEvent::NodeRemoved { host, .. } => Some(*host),
        GossipEvent::ClusterMismatch { .. } => None,
    }
}

/// Forwards gossip events to CQL clients and keeps `live_peer` (discovery's "a peer is
/// live") current. Subscribes before returning, so no event after the call is missed.
pub fn spawn_event_bridge(
    gossip: Arc<GossipService>,
    executor: Arc<Executor>,
    live_peer: watch::Sender<bool>,
) {
    let mut rx = gossip.subscribe();
    let me = gossip.view(|g| g.local().host_id);
    tokio::spawn(async move {
        let mut tracker = EventTracker::default();
        loop {
            let hosts: Vec<HostId> = match rx.recv().await {
                Ok(e) => event_host(&e).into_iter().collect(),
                // Missed some: look at every host again.
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let mut hs: BTreeSet<HostId> = tracker.hosts.keys().copied().collect();
                    hs.extend(gossip.peers().iter().map(|p| p.host_id));
                    hs.into_iter().collect()
                }
                Err(broadcast::error::RecvError::Closed) => return,
            };
            for host in hosts.into_iter().filter(|h| *h != me) {
                let view = gossip.peer(&host);
                for event in tracker.update(host, view.as_ref()) {
                    debug!(?event, "cluster event for clients");
                    executor.publish_event(event);
                }
            }
            let any_live = gossip.peers().iter().any(|p| p.alive);
            live_peer.send_if_modified(|v| std::mem::replace(v, any_live) != any_live);
        }
    });
}

/// The coordinator's view of the cluster from gossip: the ring of NORMAL/LEAVING hosts plus
/// this node (which routes to itself from the first moment, before it announces NORMAL),
/// and the hosts the failure detector holds alive.
pub fn topology_of(
    gossip: &GossipService,
    local_info: &HostInfo,
    local_tokens: &[i64],
) -> Topology {
    let (local, mut ring, alive) = gossip.view(|g| {
        (
            g.local().host_id,
            g.ring(),
            g.live_members().into_iter().collect::<HashSet<_>>(),
        )
    });
    if ring.host(&local).is_none() {
        // Only a token clash could refuse this; the local tokens then stay out of the ring
        // and every request is routed to the peers that own them.
        let _ = ring.set_host(local, local_info.clone(), local_tokens);
    }
    let mut alive = alive;
    alive.insert(local);
    Topology {
        metadata: TokenMetadata::new(local, ring),
        alive,
    }
}

/// What decides whether a new snapshot differs: tokens, live hosts, addresses.
type TopologyKey = (
    Vec<(i64, HostId)>,
    Vec<HostId>,
    Vec<(HostId, std::net::SocketAddr)>,
);

/// Republishes the topology snapshot whenever gossip reports a change that can move the
/// ring or liveness, and tells the coordinator (hints replay as soon as a host is back).
pub fn spawn_topology_feed(
    gossip: Arc<GossipService>,
    cell: Arc<TopologyCell>,
    local_info: HostInfo,
    local_tokens: Vec<i64>,
    on_change: Arc<dyn Fn() + Send + Sync>,
) {
    let mut rx = gossip.subscribe();
    tokio::spawn(async move {
        let mut last: Option<TopologyKey> = None;
        loop {
            match rx.recv().await {
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            }
            let t = topology_of(&gossip, &local_info, &local_tokens);
            let mut alive: Vec<HostId> = t.alive.iter().copied().collect();
            alive.sort();
            let addrs: Vec<(HostId, std::net::SocketAddr)> = t
                .metadata
                .ring()
                .hosts()
                .map(|(h, i)| (*h, i.addr))
                .collect();
            let key = (t.metadata.ring().tokens().to_vec(), alive, addrs);
            // Heartbeats change state every second; rebuild placement only on real change.
            if last.as_ref() == Some(&key) {
                continue;
            }
            last = Some(key);
            cell.set(t);
            on_change();
        }
    });
}

/// Keeps the gossip SCHEMA state equal to the executor's schema version.
pub fn spawn_schema_sync(gossip: Arc<GossipService>, executor: Arc<Executor>) {
    let mut rx = executor.subscribe();
    gossip.set_local_state(AppKey::Schema, executor.schema().version.to_string());
    tokio::spawn(async move {
        loop {
            match rx.recv().await {
                Ok(Event::SchemaChange(_)) | Err(broadcast::error::RecvError::Lagged(_)) => {
                    gossip.set_local_state(AppKey::Schema, executor.schema().version.to_string())
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    });
}

/// Publishes the node's load (bytes of live SSTables) every `period`, for `shoal status`.
pub fn spawn_load_publisher(gossip: Arc<GossipService>, engine: Arc<Engine>, period: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        loop {
            tick.tick().await;
            let e = engine.clone();
            let Ok(stats) = tokio::task::spawn_blocking(move || e.stats()).await else {
                continue;
            };
            gossip.set_local_state(AppKey::Load, stats.sstable_bytes.to_string());
        }
    });
}

/// Feeds addresses from seed discovery (DNS + persisted peers) to the gossiper.
pub fn spawn_seed_feed(gossip: Arc<GossipService>, mut seeds: watch::Receiver<Vec<SocketAddr>>) {
    tokio::spawn(async move {
        loop {
            let current = seeds.borrow_and_update().clone();
            let added = gossip.add_seeds(current.iter().copied());
            if added > 0 {
                info!(added, seeds = ?current, "gossip seeds from discovery");
            }
            if seeds.changed().await.is_err() {
                return;
            }
        }
    });
}

/// `nodetool status`'s State column for a gossip STATUS.
fn state_word(status: Option<Status>) -> &'static str {
    match status {
        Some(Status::Normal | Status::Shutdown) => "Normal",
        Some(Status::Leaving) => "Leaving",
        Some(Status::Other(s)) if s.starts_with("MOVING") => "Moving",
        _ => "Joining",
    }
}

/// The ring for `/ring` (and `shoal status`): every member this node knows, with ownership
/// effective for `keyspace`'s replication, or primary ownership without one.
pub fn ring_json(
    gossip: &GossipService,
    executor: &Executor,
    keyspace: Option<&str>,
) -> Result<String, String> {
    let schema = executor.schema();
    let replication = match keyspace {
        Some(ks) => Some(
            schema
                .keyspace(ks)
                .ok_or_else(|| format!("keyspace {ks} does not exist"))?
                .replication
                .clone(),
        ),
        None => None,
    };
    let nodes = gossip.view(|g| {
        let ring = g.ring();
        let me = g.local().host_id;
        let dcs: BTreeSet<String> = ring.hosts().map(|(_, h)| h.dc.clone()).collect();
        let strategy = replication
            .as_ref()
            .map(|r| ReplicationStrategy::from_options(r, dcs.iter().map(String::as_str)))
            .transpose()
            .map_err(|e| format!("replication of {}: {e}", keyspace.unwrap_or_default()))?;
        let meta = TokenMetadata::new(me, ring.clone());
        let mut nodes = Vec::new();
        for (h, s) in g.endpoint_states() {
            let status = s.status();
            if status == Some(Status::Left) {
                continue;
            }
            let in_ring = ring.host(h).is_some();
            let owns = in_ring.then(|| match &strategy {
                Some(st) => meta.effective_ownership(st, h),
                None => ring.primary_ownership(h),
            });
            let addr = g.address_of(h);
            nodes.push(serde_json::json!({
                "host_id": h.to_string(),
                "address": addr.map(|a| a.ip().to_string()),
                "internode": addr.map(|a| a.to_string()),
                "native_address": s.get(AppKey::NativeAddress),
                "dc": s.get(AppKey::Dc),
                "rack": s.get(AppKey::Rack),
                "status": if g.is_alive(h) { "Up" } else { "Down" },
                "state": state_word(status.clone()),
                "gossip_status": status.map(|st| st.as_str().to_string()),
                "tokens": s.tokens().len(),
                "owns": owns,
                "load": s.get(AppKey::Load).and_then(|l| l.parse::<u64>().ok()),
                "schema_version": s.get(AppKey::Schema),
                "local": *h == me,
            }));
        }
        Ok::<_, String>(nodes)
    })?;
    Ok(serde_json::json!({
        "keyspace": keyspace,
        "effective": keyspace.is_some(),
        "nodes": nodes,
    })
    .to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hid(n: u8) -> HostId {
        let mut b = [0u8; 16];
        b[15] = n;
        HostId(b)
    }

    fn view(n: u8, status: Option<&str>, alive: bool) -> PeerView {
        PeerView {
            host_id: hid(n),
            internode: Some(SocketAddr::from(([127, 0, 0, n], 7000))),
            alive,
            status: status.map(str::to_string),
            dc: Some("dc1".into()),
            rack: Some("rack1".into()),
            tokens: vec![i64::from(n) * 100, i64::from(n) * 100 + 1],
            rpc_address: Some(format!("127.0.1.{n}")),
            native_address: Some(format!("127.0.1.{n}:9042")),
            schema_version: Some("9d1c7c3a-0a3e-3c1b-8a8a-2b3b2a1d9e11".into()),
            release_version: Some("5.0.0-shoal".into()),
            hostname: None,
        }
    }

    fn native(n: u8) -> SocketAddr {
        SocketAddr::from(([127, 0, 1, n], 9042))
    }

    #[test]
    fn new_node_only_once_ready_then_down_up_moved_removed() {
        let mut t = EventTracker::default();
        let h = hid(2);
        // Known but not NORMAL yet, or not alive: nothing.
        assert!(t.update(h, Some(&view(2, None, true))).is_empty());
        assert!(
            t.update(h, Some(&view(2, Some("NORMAL"), false)))
                .is_empty()
        );
        let mut no_native = view(2, Some("NORMAL"), true);
        no_native.native_address = None;
        assert!(t.update(h, Some(&no_native)).is_empty());
        assert_eq!(
            t.update(h, Some(&view(2, Some("NORMAL"), true))),
            [
                Event::TopologyChange {
                    change: "NEW_NODE",
                    address: native(2)
                },
                Event::StatusChange {
                    change: "UP",
                    address: native(2)
                }
            ]
        );
        // Nothing changed: nothing sent.
        assert!(t.update(h, Some(&view(2, Some("NORMAL"), true))).is_empty());
        assert_eq!(
            t.update(h, Some(&view(2, Some("shutdown"), false))),
            [Event::StatusChange {
                change: "DOWN",
                address: native(2)
            }]
        );
        // Restarted: alive again but not serving until NORMAL.
        assert!(t.update(h, Some(&view(2, None, true))).is_empty());
        assert_eq!(
            t.update(h, Some(&view(2, Some("NORMAL"), true))),
            [Event::StatusChange {
                change: "UP",
                address: native(2)
            }]
        );
        let mut moved = view(2, Some("NORMAL"), true);
        moved.tokens = vec![5];
        assert_eq!(
            t.update(h, Some(&moved)),
            [Event::TopologyChange {
                change: "MOVED_NODE",
                address: native(2)
            }]
        );
        assert_eq!(
            t.update(h, Some(&view(2, Some("LEFT"), false))),
            [Event::TopologyChange {
                change: "REMOVED_NODE",
                address: native(2)
            }]
        );
        assert!(t.update(h, None).is_empty(), "already removed");
    }

    #[test]
    fn address_change_is_removed_plus_new() {
        let mut t = EventTracker::default();
        let h = hid(3);
        assert_eq!(t.update(h, Some(&view(3, Some("NORMAL"), true))).len(), 2);
        let mut moved = view(3, Some("NORMAL"), true);
        moved.native_address = Some("127.0.1.9:9042".into());
        assert_eq!(
            t.update(h, Some(&moved)),
            [
                Event::TopologyChange {
                    change: "REMOVED_NODE",
                    address: native(3)
                },
                Event::TopologyChange {
                    change: "NEW_NODE",
                    address: native(9)
                }
            ]
        );
        assert_eq!(
            t.update(h, None),
            [Event::TopologyChange {
                change: "REMOVED_NODE",
                address: native(9)
            }]
        );
    }

    #[test]
    fn peers_rows_need_tokens_and_a_ring_status() {
        let p = peer_info(&view(4, Some("NORMAL"), true)).unwrap();
        assert_eq!(p.peer, IpAddr::from([127, 0, 0, 4]));
        assert_eq!(p.peer_port, 7000);
        assert_eq!(p.rpc_address, Some(IpAddr::from([127, 0, 1, 4])));
        assert_eq!(p.native_port, Some(9042));
        assert_eq!(p.host_id, uuid::Uuid::from_bytes(hid(4).0));
        assert_eq!(p.tokens, vec![400, 401]);
        assert!(p.schema_version.is_some());
        assert!(peer_info(&view(4, Some("shutdown"), false)).is_some());
        assert!(peer_info(&view(4, Some("LEFT"), false)).is_none());
        assert!(peer_info(&view(4, Some("BOOT"), true)).is_none());
        assert!(peer_info(&view(4, None, true)).is_none());
        let mut no_tokens = view(4, Some("NORMAL"), true);
        no_tokens.tokens.clear();
        assert!(peer_info(&no_tokens).is_none());
    }
}
