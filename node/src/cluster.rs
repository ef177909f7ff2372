//! The gossip service: drives the pure [`Gossiper`] state machine with a clock, a random
//! source and internode messaging, publishes its events, and persists the peers it learns
//! so a restarted node can find its cluster again without DNS.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shoal_gossip::gossiper::{GossipConfig, GossipEvent, Gossiper, LocalInfo, Outgoing};
use shoal_gossip::internode::{Frame, MessageType};
use shoal_gossip::message::GossipMessage;
use shoal_gossip::ring::HostId;
use shoal_gossip::state::{AppKey, Status};
use tokio::sync::{broadcast, watch};
use tracing::{debug, info, warn};

use crate::messaging::Messaging;

/// What the node knows of one peer (system.peers, CQL events, routing).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerView {
    pub host_id: HostId,
    pub internode: Option<SocketAddr>,
    pub alive: bool,
    pub status: Option<String>,
    pub dc: Option<String>,
    pub rack: Option<String>,
    pub tokens: Vec<i64>,
    pub rpc_address: Option<String>,
    pub native_address: Option<String>,
    pub schema_version: Option<String>,
    pub release_version: Option<String>,
    pub hostname: Option<String>,
}

/// The gossip service.
pub struct GossipService {
    gossiper: Mutex<Gossiper>,
    messaging: Messaging,
    events: broadcast::Sender<GossipEvent>,
    peers_file: PathBuf,
    /// Serialises writes of `peers_file`: gossip frames are handled concurrently, and two
    /// writers sharing the temporary file made one of them fail (the other had renamed it).
    persist_lock: Mutex<()>,
}

fn frame_type(msg: &GossipMessage) -> MessageType {
    match msg {
        GossipMessage::Syn(_) => MessageType::GossipSyn,
        GossipMessage::Ack(_) => MessageType::GossipAck,
        GossipMessage::Ack2(_) => MessageType::GossipAck2,
        GossipMessage::Echo(_) => MessageType::Echo,
        GossipMessage::EchoReply(_) => MessageType::EchoReply,
    }
}

impl GossipService {
    /// `seeds` are internode addresses; the peers persisted in `system_dir` join them.
    pub fn new(
        local: LocalInfo,
        mut seeds: Vec<SocketAddr>,
        messaging: Messaging,
        system_dir: &Path,
    ) -> Arc<Self> {
        let peers_file = system_dir.join("peers.txt");
        for p in load_peers(&peers_file) {
            if !seeds.contains(&p) && p != local.addr {
                seeds.push(p);
            }
        }
        let (events, _) = broadcast::channel(1024);
        Arc::new(GossipService {
            gossiper: Mutex::new(Gossiper::new(local, seeds, GossipConfig::default())),
            messaging,
            events,
            peers_file,
            persist_lock: Mutex::new(()),
        })
    }

    pub fn subscribe(&self) -> broadcast::Receiver<GossipEvent> {
        self.events.subscribe()
    }

    pub fn set_local_state(&self, key: AppKey, value: impl Into<String>) {
        self.gossiper
            .lock()
            .expect("gossiper lock")
            .set_local_state(key, value);
    }

    fn send(&self, out: Vec<Outgoing>) {
        for o in out {
            let payload = shoal_gossip::codec::encode(&o.msg);
            if let Err(e) = self
                .messaging
                .send_one_way(o.to, frame_type(&o.msg), payload)
            {
                debug!(to = %o.to, error = %e, "gossip message not sent");
            }
        }
    }

    fn publish(&self, events: Vec<GossipEvent>) {
        let mut membership_changed = false;
        for e in events {
            match &e {
                GossipEvent::NodeUp { host, addr } => info!(%host, ?addr, "node is up"),
                GossipEvent::NodeDown { host, addr } => info!(%host, ?addr, "node is down"),
                GossipEvent::NodeJoined { host, addr } => {
                    membership_changed = true;
                    info!(%host, ?addr, "new node in the cluster")
                }
                GossipEvent::NodeAddressChanged { host, old, new } => {
                    membership_changed = true;
                    info!(%host, ?old, %new, "node changed address")
                }
                GossipEvent::NodeRemoved { host, .. } => {
                    membership_changed = true;
                    info!(%host, "node removed")
                }
                GossipEvent::ClusterMismatch { from, cluster } => {
                    warn!(%from, %cluster, "ignoring gossip from another cluster")
                }
                GossipEvent::StateChanged { .. } => {}
            }
            let _ = self.events.send(e);
        }
        if membership_changed && let Err(e) = self.persist_peers() {
            warn!(file = %self.peers_file.display(), error = %e, "could not persist the peer list");
        }
    }

    /// Handles one inbound gossip frame.
    pub fn handle_frame(&self, from: SocketAddr, frame: &Frame) {
        let msg = match frame.to_gossip() {
            Ok(m) => m,
            Err(e) => {
                warn!(%from, error = %e, "undecodable gossip message");
                return;
            }
        };
        let (out, events) =
            self.gossiper
                .lock()
                .expect("gossiper lock")
                .handle(Instant::now(), from, msg);
        self.send(out);
        self.publish(events);
    }

    /// Gossips once a second until `stop`, then announces the shutdown.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut interval = tokio::time::interval(Duration::from_secs(1));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = interval.tick() => {
                    let (out, events) = {
                        let mut rng = rand::rng();
                        self.gossiper.lock().expect("gossiper lock").tick(Instant::now(), &mut rng)
                    };
                    self.send(out);
                    self.publish(events);
                }
                _ = stop.changed() => {
                    if *stop.borrow() {
                        self.announce_shutdown();
                        return;
                    }
                }
            }
        }
    }

    /// Tells peers this node is going down so they mark it down at once, not after the
    /// failure detector convicts it.
    pub fn announce_shutdown(&self) {
        let out = self.gossiper.lock().expect("gossiper lock").shutdown();
        self.send(out);
    }

    /// Every known endpoint but this node.
    pub fn peers(&self) -> Vec<PeerView> {
        let g = self.gossiper.lock().expect("gossiper lock");
        let me = g.local().host_id;
        g.endpoint_states()
            .iter()
            .filter(|(h, _)| **h != me)
            .map(|(h, s)| peer_view(&g, *h, s))
            .collect()
    }

    /// One endpoint (this node too), if known.
    pub fn peer(&self, host: &HostId) -> Option<PeerView> {
        let g = self.gossiper.lock().expect("gossiper lock");
        g.endpoint_state(host).map(|s| peer_view(&g, *host, s))
    }

    /// Runs `f` on the gossiper's current state (keep it short: gossip waits meanwhile).
    pub fn view<R>(&self, f: impl FnOnce(&Gossiper) -> R) -> R {
        f(&self.gossiper.lock().expect("gossiper lock"))
    }

    /// Adds seeds found at run time (DNS discovery); returns how many were new.
    pub fn add_seeds(&self, seeds: impl IntoIterator<Item = SocketAddr>) -> usize {
        self.gossiper
            .lock()
            .expect("gossiper lock")
            .add_seeds(seeds)
    }

    /// The internode addresses persisted in `peers.txt` (read at start-up).
    pub fn persisted_peers(&self) -> Vec<SocketAddr> {
        load_peers(&self.peers_file)
    }

    /// Writes the live peer list to `peers.txt` (temporary file, fsync, rename).
    fn persist_peers(&self) -> std::io::Result<()> {
        let _guard = self.persist_lock.lock().unwrap_or_else(|e| e.into_inner());
        let addrs: BTreeMap<String, ()> = self
            .peers()
            .into_iter()
            .filter(|p| p.status.as_deref().is_none_or(|s| s != "LEFT"))
            .filter_map(|p| p.internode.map(|a| (a.to_string(), ())))
            .collect();
        let text: String = addrs.keys().map(|a| format!("{a}\n")).collect();
        let tmp = self.peers_file.with_extension("tmp");
        std::fs::write(&tmp, text)?;
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, &self.peers_file)
    }
}

fn peer_view(g: &Gossiper, h: HostId, s: &shoal_gossip::state::EndpointState) -> PeerView {
    PeerView {
        host_id: h,
        internode: g.address_of(&h),
        alive: g.is_alive(&h),
        status: s.status().map(|st: Status| st.as_str().to_string()),
        dc: s.get(AppKey::Dc).map(str::to_string),
        rack: s.get(AppKey::Rack).map(str::to_string),
        tokens: s.tokens(),
        rpc_address: s.get(AppKey::RpcAddress).map(str::to_string),
        native_address: s.get(AppKey::NativeAddress).map(str::to_string),
        schema_version: s.get(AppKey::Schema).map(str::to_string),
        release_version: s.get(AppKey::ReleaseVersion).map(str::to_string),
        hostname: s.get(AppKey::HostName).map(str::to_string),
    }
}

/// The persisted peer list: one `ip:port` per line; unreadable lines are skipped (the file
/// is only a hint for finding the cluster, never a source of truth).
fn load_peers(path: &Path) -> Vec<SocketAddr> {
    std::fs::read_to_string(path)
        .map(|t| t.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messaging::{HandlerFuture, InboundHandler, MessagingConfig};

    struct Route(Mutex<Option<Arc<GossipService>>>);

    impl InboundHandler for Route {
        fn handle(&self, from: SocketAddr, frame: Frame) -> HandlerFuture {
            if let Some(g) = self.0.lock().unwrap().as_ref() {
                g.handle_frame(from, &frame);
            }
            Box::pin(async { None })
        }
    }

    async fn start(
        ip: &str,
        seeds: Vec<SocketAddr>,
        dir: &Path,
        stop: watch::Receiver<bool>,
    ) -> Arc<GossipService> {
        let addr: SocketAddr = format!("{ip}:0").parse().unwrap();
        let probe = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = probe.local_addr().unwrap();
        drop(probe);
        let route = Arc::new(Route(Mutex::new(None)));
        let messaging = Messaging::start(
            MessagingConfig::new(addr, addr),
            route.clone(),
            stop.clone(),
        )
        .await
        .unwrap();
        let local = LocalInfo {
            host_id: HostId(*uuid::Uuid::new_v4().as_bytes()),
            addr,
            generation: 1,
            cluster_name: "test".into(),
            dc: "dc1".into(),
            rack: "r1".into(),
        };
        let g = GossipService::new(local, seeds, messaging, dir);
        g.set_local_state(AppKey::Status, "NORMAL");
        *route.0.lock().unwrap() = Some(g.clone());
        tokio::spawn(g.clone().run(stop));
        g
    }

    #[tokio::test]
    async fn three_nodes_find_each_other_and_persist_peers() {
        let (stop_tx, stop) = watch::channel(false);
        let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
        let a = start("127.0.0.1", vec![], dirs[0].path(), stop.clone()).await;
        let seed = a.gossiper.lock().unwrap().local().addr;
        let b = start("127.0.0.1", vec![seed], dirs[1].path(), stop.clone()).await;
        let c = start("127.0.0.1", vec![seed], dirs[2].path(), stop.clone()).await;
        let mut ok = false;
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if [&a, &b, &c]
                .iter()
                .all(|g| g.peers().len() == 2 && g.peers().iter().all(|p| p.alive))
            {
                ok = true;
                break;
            }
        }
        assert!(
            ok,
            "all three see two live peers: {:?}",
            [a.peers(), b.peers(), c.peers()]
        );
        let saved = load_peers(&dirs[1].path().join("peers.txt"));
        assert_eq!(saved.len(), 2, "{saved:?}");
        stop_tx.send(true).unwrap();
    }

    /// Gossip frames are handled concurrently, each may persist the peer list: concurrent
    /// writers must all succeed (they once shared the temporary file and one lost it).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_peer_list_writes_all_succeed() {
        let (stop_tx, stop) = watch::channel(false);
        let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
        let a = start("127.0.0.1", vec![], dirs[0].path(), stop.clone()).await;
        let seed = a.gossiper.lock().unwrap().local().addr;
        let b = start("127.0.0.1", vec![seed], dirs[1].path(), stop.clone()).await;
        for _ in 0..100 {
            if !b.peers().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(b.peers().len(), 1, "b learns a");
        let failures: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| (0..50).filter(|_| b.persist_peers().is_err()).count()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(failures, 0, "concurrent writes of peers.txt failed");
        assert_eq!(load_peers(&dirs[1].path().join("peers.txt")), vec![seed]);
        stop_tx.send(true).unwrap();
    }
}
