//! The gossip state machine, modelled on Cassandra's `gms/Gossiper.java` but sans-IO: the
//! caller delivers messages and clock ticks, and sends what comes back.
//!
//! Endpoints are keyed by host id rather than address, so a node restarting on a new IP keeps
//! its identity: its new generation carries a new [`AppKey::InternalAddress`], and peers
//! report [`GossipEvent::NodeAddressChanged`] instead of a stranger joining.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::Rng;
use rand::seq::IndexedRandom;

use crate::failure_detector::{FailureDetector, FailureDetectorConfig};
use crate::message::{Ack, Ack2, Delta, Digest, Echo, GossipMessage, Syn};
use crate::ring::{HostId, HostInfo, Ring};
use crate::state::{AppKey, EndpointState, Status, VersionedValue};

/// Who this node is.
#[derive(Clone, Debug)]
pub struct LocalInfo {
    pub host_id: HostId,
    /// Internode address peers reach us at.
    pub addr: SocketAddr,
    /// Must grow across restarts of the same host id (Cassandra uses Unix seconds at start).
    pub generation: i64,
    pub cluster_name: String,
    pub dc: String,
    pub rack: String,
}

/// Tuning.
#[derive(Clone, Debug)]
pub struct GossipConfig {
    pub failure_detector: FailureDetectorConfig,
    /// Cassandra refuses a generation more than a year ahead of the known one: a clock gone
    /// wild on one node must not make its state unbeatable forever.
    pub max_generation_skew: i64,
    /// How long a LEFT node's state is kept (so every peer learns it left) before eviction.
    pub left_expiry: Duration,
    /// How long gossip about an evicted or removed node is ignored, so peers that have not
    /// yet evicted it cannot resurrect it (Cassandra's quarantine).
    pub quarantine: Duration,
    /// How long to wait for an ECHO reply before probing again.
    pub echo_retry: Duration,
}

impl Default for GossipConfig {
    fn default() -> Self {
        GossipConfig {
            failure_detector: FailureDetectorConfig::default(),
            max_generation_skew: 86_400 * 365,
            left_expiry: Duration::from_secs(3 * 86_400),
            quarantine: Duration::from_secs(60),
            echo_retry: Duration::from_secs(2),
        }
    }
}

/// A message to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    pub to: SocketAddr,
    pub msg: GossipMessage,
}

/// What changed, for the node to act on (ring updates, CQL `TOPOLOGY_CHANGE` and
/// `STATUS_CHANGE` events).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GossipEvent {
    /// A host id seen for the first time. Its state is in [`Gossiper::endpoint_state`].
    NodeJoined {
        host: HostId,
        addr: Option<SocketAddr>,
    },
    NodeUp {
        host: HostId,
        addr: Option<SocketAddr>,
    },
    NodeDown {
        host: HostId,
        addr: Option<SocketAddr>,
    },
    /// Same host id, new internode address.
    NodeAddressChanged {
        host: HostId,
        old: Option<SocketAddr>,
        new: SocketAddr,
    },
    /// A known node published a new value (including after a restart).
    StateChanged {
        host: HostId,
        key: AppKey,
        value: String,
    },
    /// The node left the ring, was removed, or its state was evicted.
    NodeRemoved {
        host: HostId,
        addr: Option<SocketAddr>,
    },
    /// A message from a node of another cluster was ignored.
    ClusterMismatch { from: SocketAddr, cluster: String },
}

#[derive(Clone, Debug, Default)]
struct Peer {
    addr: Option<SocketAddr>,
    alive: bool,
    left_since: Option<Instant>,
}

/// The gossip state machine for one node.
#[derive(Debug)]
pub struct Gossiper {
    local: LocalInfo,
    seeds: Vec<SocketAddr>,
    config: GossipConfig,
    /// Local version counter; every local change takes the next value.
    version: u64,
    states: BTreeMap<HostId, EndpointState>,
    peers: BTreeMap<HostId, Peer>,
    quarantined: HashMap<HostId, Instant>,
    /// ECHOs in flight, so a burst of gossip about one node sends one probe.
    echo_sent: HashMap<HostId, Instant>,
    /// Messages produced while applying state (ECHO probes), sent with the caller's output.
    outbox: Vec<Outgoing>,
    fd: FailureDetector<HostId>,
}

fn parse_addr(s: &EndpointState) -> Option<SocketAddr> {
    s.get(AppKey::InternalAddress)?.parse().ok()
}

impl Gossiper {
    /// A node with its identity published (host id, address, dc, rack) but no STATUS yet:
    /// set [`AppKey::Status`] and [`AppKey::Tokens`] once it knows them.
    pub fn new(local: LocalInfo, seeds: Vec<SocketAddr>, config: GossipConfig) -> Self {
        let fd = FailureDetector::new(config.failure_detector.clone());
        let mut g = Gossiper {
            states: BTreeMap::from([(local.host_id, EndpointState::new(local.generation))]),
            local,
            seeds,
            config,
            version: 0,
            peers: BTreeMap::new(),
            quarantined: HashMap::new(),
            echo_sent: HashMap::new(),
            outbox: Vec::new(),
            fd,
        };
        let l = g.local.clone();
        g.set_local_state(AppKey::HostId, l.host_id.to_string());
        g.set_local_state(AppKey::InternalAddress, l.addr.to_string());
        g.set_local_state(AppKey::Dc, l.dc);
        g.set_local_state(AppKey::Rack, l.rack);
        g
    }

    pub fn local(&self) -> &LocalInfo {
        &self.local
    }

    /// Adds seeds learned at run time (DNS discovery, persisted peers). Our own address and
    /// seeds already known are skipped; returns how many were new.
    pub fn add_seeds(&mut self, seeds: impl IntoIterator<Item = SocketAddr>) -> usize {
        let mut added = 0;
        for s in seeds {
            if s != self.local.addr && !self.seeds.contains(&s) {
                self.seeds.push(s);
                added += 1;
            }
        }
        added
    }

    pub fn seeds(&self) -> &[SocketAddr] {
        &self.seeds
    }

    fn next_version(&mut self) -> u64 {
        self.version += 1;
        self.version
    }

    fn local_state_mut(&mut self) -> &mut EndpointState {
        self.states
            .get_mut(&self.local.host_id)
            .expect("local state always present")
    }

    /// Publishes a local value; it reaches every node within a few rounds. A value equal to
    /// the current one is not republished.
    pub fn set_local_state(&mut self, key: AppKey, value: impl Into<String>) {
        let value = value.into();
        if self.states[&self.local.host_id].get(key) == Some(value.as_str()) {
            return;
        }
        let version = self.next_version();
        self.local_state_mut()
            .states
            .insert(key, VersionedValue { value, version });
    }

    /// Every endpoint state, ours included.
    pub fn endpoint_states(&self) -> &BTreeMap<HostId, EndpointState> {
        &self.states
    }

    pub fn endpoint_state(&self, host: &HostId) -> Option<&EndpointState> {
        self.states.get(host)
    }

    /// Hosts believed alive, ours included, sorted.
    pub fn live_members(&self) -> Vec<HostId> {
        let mut v: Vec<HostId> = self
            .peers
            .iter()
            .filter(|(_, p)| p.alive)
            .map(|(h, _)| *h)
            .collect();
        v.push(self.local.host_id);
        v.sort();
        v
    }

    /// Known hosts that are down and have not left, sorted.
    pub fn unreachable_members(&self) -> Vec<HostId> {
        self.peers
            .iter()
            .filter(|(_, p)| !p.alive && p.left_since.is_none())
            .map(|(h, _)| *h)
            .collect()
    }

    pub fn is_alive(&self, host: &HostId) -> bool {
        *host == self.local.host_id || self.peers.get(host).is_some_and(|p| p.alive)
    }

    pub fn address_of(&self, host: &HostId) -> Option<SocketAddr> {
        if *host == self.local.host_id {
            return Some(self.local.addr);
        }
        self.peers.get(host)?.addr
    }

    /// The ring as gossip describes it: hosts with tokens whose status puts them on the ring
    /// (NORMAL, LEAVING, or `shutdown`: a node stopped cleanly still owns its ranges and is
    /// merely down, as in Cassandra; taking it off the ring would hand its ranges to other
    /// nodes for the length of a restart). Hosts whose tokens collide with an earlier host
    /// are left out.
    pub fn ring(&self) -> Ring {
        let mut ring = Ring::new();
        for (h, s) in &self.states {
            if !matches!(
                s.status(),
                Some(Status::Normal | Status::Leaving | Status::Shutdown)
            ) {
                continue;
            }
            let addr = if *h == self.local.host_id {
                Some(self.local.addr)
            } else {
                parse_addr(s)
            };
            let (Some(addr), tokens) = (addr, s.tokens()) else {
                continue;
            };
            let info = HostInfo {
                addr,
                dc: s.get(AppKey::Dc).unwrap_or_default().to_string(),
                rack: s.get(AppKey::Rack).unwrap_or_default().to_string(),
            };
            let _ = ring.set_host(*h, info, &tokens);
        }
        ring
    }

    fn digests(&self) -> Vec<Digest> {
        self.states
            .iter()
            .map(|(h, s)| Digest {
                host: *h,
                generation: s.heartbeat.generation,
                max_version: s.max_version(),
            })
            .collect()
    }

    fn syn(&self) -> GossipMessage {
        GossipMessage::Syn(Syn {
            cluster: self.local.cluster_name.clone(),
            digests: self.digests(),
        })
    }

    /// One gossip round (call every second): beat the heartbeat, gossip to a random live
    /// member, maybe to an unreachable one and maybe to a seed (Cassandra's `GossipTask`),
    /// then convict silent nodes and evict long-gone ones.
    pub fn tick<R: Rng + ?Sized>(
        &mut self,
        now: Instant,
        rng: &mut R,
    ) -> (Vec<Outgoing>, Vec<GossipEvent>) {
        let v = self.next_version();
        self.local_state_mut().heartbeat.version = v;
        let mut out = Vec::new();
        let live: Vec<SocketAddr> = self
            .peers
            .values()
            .filter(|p| p.alive)
            .filter_map(|p| p.addr)
            .collect();
        let unreachable: Vec<SocketAddr> = self
            .peers
            .values()
            .filter(|p| !p.alive && p.left_since.is_none())
            .filter_map(|p| p.addr)
            .collect();
        let seeds: Vec<SocketAddr> = self
            .seeds
            .iter()
            .copied()
            .filter(|s| *s != self.local.addr)
            .collect();

        let mut gossiped_to_seed = false;
        if let Some(&to) = live.choose(rng) {
            gossiped_to_seed = self.seeds.contains(&to);
            out.push(Outgoing {
                to,
                msg: self.syn(),
            });
        }
        // Probing the unreachable lets a partition heal: the chance grows with their share.
        if !unreachable.is_empty() {
            let p = unreachable.len() as f64 / (live.len() as f64 + 1.0);
            if rng.random::<f64>() < p
                && let Some(&to) = unreachable.choose(rng)
            {
                out.push(Outgoing {
                    to,
                    msg: self.syn(),
                });
            }
        }
        // Seeds are the meeting point that keeps the cluster from splitting into islands.
        if (!gossiped_to_seed || live.len() < self.seeds.len()) && !seeds.is_empty() {
            let to = if live.is_empty() {
                seeds.choose(rng).copied()
            } else {
                let p = seeds.len() as f64 / (live.len() + unreachable.len()) as f64;
                if rng.random::<f64>() < p {
                    seeds.choose(rng).copied()
                } else {
                    None
                }
            };
            if let Some(to) = to
                && !out.iter().any(|o| o.to == to)
            {
                out.push(Outgoing {
                    to,
                    msg: self.syn(),
                });
            }
        }
        let events = self.status_check(now);
        out.append(&mut self.outbox);
        (out, events)
    }

    fn status_check(&mut self, now: Instant) -> Vec<GossipEvent> {
        let mut events = Vec::new();
        let hosts: Vec<HostId> = self.peers.keys().copied().collect();
        for h in hosts {
            let convict = self.fd.interpret(&h, now);
            let p = self.peers.get_mut(&h).expect("listed above");
            if convict && p.alive {
                p.alive = false;
                events.push(GossipEvent::NodeDown {
                    host: h,
                    addr: p.addr,
                });
            }
            if let Some(since) = p.left_since
                && now.saturating_duration_since(since) > self.config.left_expiry
            {
                self.evict(h, now);
            }
        }
        self.quarantined.retain(|_, until| *until > now);
        events
    }

    fn evict(&mut self, h: HostId, now: Instant) -> Option<Peer> {
        self.states.remove(&h);
        self.fd.remove(&h);
        self.quarantined.insert(h, now + self.config.quarantine);
        self.echo_sent.remove(&h);
        self.peers.remove(&h)
    }

    /// Forgets a node at once (`nodetool removenode`/`assassinate`), and ignores gossip about
    /// it for the quarantine period so peers cannot bring it back.
    pub fn remove_endpoint(&mut self, host: HostId, now: Instant) -> Vec<GossipEvent> {
        if host == self.local.host_id {
            return Vec::new();
        }
        match self.evict(host, now) {
            Some(p) => vec![GossipEvent::NodeRemoved { host, addr: p.addr }],
            None => Vec::new(),
        }
    }

    /// Announces a clean shutdown: STATUS becomes `shutdown` and every live peer is told
    /// directly, so they mark us down now instead of after the failure detector's ~20 s.
    pub fn shutdown(&mut self) -> Vec<Outgoing> {
        self.set_local_state(AppKey::Status, Status::Shutdown.as_str());
        let delta: Delta = (self.local.host_id, self.states[&self.local.host_id].clone());
        self.peers
            .values()
            .filter(|p| p.alive)
            .filter_map(|p| p.addr)
            .map(|to| Outgoing {
                to,
                msg: GossipMessage::Ack2(Ack2 {
                    cluster: self.local.cluster_name.clone(),
                    deltas: vec![delta.clone()],
                }),
            })
            .collect()
    }

    /// Handles one message from `from`; returns replies and events.
    pub fn handle(
        &mut self,
        now: Instant,
        from: SocketAddr,
        msg: GossipMessage,
    ) -> (Vec<Outgoing>, Vec<GossipEvent>) {
        if msg.cluster() != self.local.cluster_name {
            return (
                Vec::new(),
                vec![GossipEvent::ClusterMismatch {
                    from,
                    cluster: msg.cluster().to_string(),
                }],
            );
        }
        let cluster = self.local.cluster_name.clone();
        let (mut out, events) = match msg {
            GossipMessage::Syn(syn) => {
                let (deltas, requests) = self.examine(&syn.digests);
                let ack = GossipMessage::Ack(Ack {
                    cluster,
                    deltas,
                    requests,
                });
                (vec![Outgoing { to: from, msg: ack }], Vec::new())
            }
            GossipMessage::Ack(ack) => {
                let events = self.apply(now, ack.deltas);
                let deltas: Vec<Delta> = ack
                    .requests
                    .iter()
                    .filter_map(|d| self.delta_for(d))
                    .collect();
                let out = if deltas.is_empty() {
                    Vec::new()
                } else {
                    vec![Outgoing {
                        to: from,
                        msg: GossipMessage::Ack2(Ack2 { cluster, deltas }),
                    }]
                };
                (out, events)
            }
            GossipMessage::Ack2(ack2) => (Vec::new(), self.apply(now, ack2.deltas)),
            GossipMessage::Echo(_) => {
                let reply = GossipMessage::EchoReply(Echo {
                    cluster,
                    host: self.local.host_id,
                    generation: self.local.generation,
                });
                (
                    vec![Outgoing {
                        to: from,
                        msg: reply,
                    }],
                    Vec::new(),
                )
            }
            GossipMessage::EchoReply(e) => (Vec::new(), self.echo_reply(e)),
        };
        out.append(&mut self.outbox);
        (out, events)
    }

    /// A node answered our probe: it is up, provided the answer comes from the incarnation
    /// we know (an older one is stale; a newer one will arrive by gossip first).
    fn echo_reply(&mut self, e: Echo) -> Vec<GossipEvent> {
        let mut events = Vec::new();
        self.echo_sent.remove(&e.host);
        let current = self
            .states
            .get(&e.host)
            .is_some_and(|s| s.heartbeat.generation == e.generation && !s.is_dead_state());
        if current
            && let Some(p) = self.peers.get_mut(&e.host)
            && !p.alive
            && p.left_since.is_none()
        {
            p.alive = true;
            events.push(GossipEvent::NodeUp {
                host: e.host,
                addr: p.addr,
            });
        }
        events
    }

    /// What to send for a request digest: states newer than its version, or everything if
    /// the requester's generation is not ours (its versions mean nothing in our generation).
    fn delta_for(&self, d: &Digest) -> Option<Delta> {
        let s = self.states.get(&d.host)?;
        let since = if s.heartbeat.generation == d.generation {
            d.max_version
        } else {
            0
        };
        if s.heartbeat.generation < d.generation {
            return None;
        }
        Some((d.host, s.newer_than(since)))
    }

    /// Compares a SYN's digests with our view (Cassandra's `examineGossiper`).
    fn examine(&self, digests: &[Digest]) -> (Vec<Delta>, Vec<Digest>) {
        let mut deltas = Vec::new();
        let mut requests = Vec::new();
        for d in digests {
            match self.states.get(&d.host) {
                None => requests.push(Digest {
                    max_version: 0,
                    ..*d
                }),
                Some(s) => {
                    let (gen_, max) = (s.heartbeat.generation, s.max_version());
                    if d.generation > gen_ {
                        requests.push(Digest {
                            max_version: 0,
                            ..*d
                        });
                    } else if d.generation < gen_ {
                        deltas.push((d.host, s.clone()));
                    } else if d.max_version > max {
                        requests.push(Digest {
                            max_version: max,
                            ..*d
                        });
                    } else if d.max_version < max {
                        deltas.push((d.host, s.newer_than(d.max_version)));
                    }
                }
            }
        }
        // Nodes the initiator has never heard of: send them whole rather than wait for a
        // round in the other direction.
        for (h, s) in &self.states {
            if !digests.iter().any(|d| d.host == *h) {
                deltas.push((*h, s.clone()));
            }
        }
        (deltas, requests)
    }

    /// Merges remote deltas (Cassandra's `applyStateLocally`).
    fn apply(&mut self, now: Instant, deltas: Vec<Delta>) -> Vec<GossipEvent> {
        let mut events = Vec::new();
        for (host, remote) in deltas {
            if host == self.local.host_id {
                continue;
            }
            if let Some(until) = self.quarantined.get(&host) {
                if *until > now {
                    continue;
                }
                self.quarantined.remove(&host);
            }
            match self.states.get(&host) {
                None => self.discover(now, host, remote, &mut events),
                Some(local) => {
                    let lgen = local.heartbeat.generation;
                    let rgen = remote.heartbeat.generation;
                    if rgen > lgen {
                        if rgen > lgen.saturating_add(self.config.max_generation_skew) {
                            continue;
                        }
                        self.restarted(now, host, remote, &mut events);
                    } else if rgen == lgen {
                        self.merge(now, host, remote, &mut events);
                    }
                }
            }
        }
        events
    }

    fn discover(
        &mut self,
        now: Instant,
        host: HostId,
        remote: EndpointState,
        events: &mut Vec<GossipEvent>,
    ) {
        let addr = parse_addr(&remote);
        // Not alive yet: the state may be stale news of a dead node. When its heartbeat moves
        // we probe it with an ECHO, and its answer marks it up.
        let mut peer = Peer {
            addr,
            alive: false,
            left_since: None,
        };
        let left = remote.status() == Some(Status::Left);
        if left {
            peer.left_since = Some(now);
        }
        self.peers.insert(host, peer);
        self.states.insert(host, remote);
        self.fd.report(&host, now);
        // News that a node we never knew has left is recorded quietly.
        if !left {
            events.push(GossipEvent::NodeJoined { host, addr });
        }
    }

    fn restarted(
        &mut self,
        now: Instant,
        host: HostId,
        remote: EndpointState,
        events: &mut Vec<GossipEvent>,
    ) {
        let old = self
            .states
            .insert(host, remote.clone())
            .unwrap_or(EndpointState::new(0));
        for (k, v) in &remote.states {
            if old.get(*k) != Some(v.value.as_str()) {
                self.on_change(now, host, *k, &v.value, events);
            }
        }
        // A new generation is a fresh process: forget the old arrival history.
        self.fd.remove(&host);
        self.fd.report(&host, now);
        if !remote.is_dead_state() {
            self.probe(now, host);
        }
    }

    fn merge(
        &mut self,
        now: Instant,
        host: HostId,
        remote: EndpointState,
        events: &mut Vec<GossipEvent>,
    ) {
        let local = self.states.get_mut(&host).expect("caller checked");
        let mut changed = Vec::new();
        for (k, v) in remote.states {
            let newer = local.states.get(&k).is_none_or(|l| v.version > l.version);
            if newer {
                changed.push((k, v.value.clone()));
                local.states.insert(k, v);
            }
        }
        let beat = remote.heartbeat.version > local.heartbeat.version;
        if beat {
            local.heartbeat.version = remote.heartbeat.version;
        }
        let dead = local.is_dead_state();
        for (k, v) in changed {
            self.on_change(now, host, k, &v, events);
        }
        if beat {
            self.fd.report(&host, now);
            if !dead {
                self.probe(now, host);
            }
        }
    }

    /// Sends an ECHO to a node we have reason to think is up but have not marked up.
    fn probe(&mut self, now: Instant, host: HostId) {
        let Some(p) = self.peers.get(&host) else {
            return;
        };
        let (false, None, Some(to)) = (p.alive, p.left_since, p.addr) else {
            return;
        };
        if let Some(sent) = self.echo_sent.get(&host)
            && now.saturating_duration_since(*sent) < self.config.echo_retry
        {
            return;
        }
        self.echo_sent.insert(host, now);
        self.outbox.push(Outgoing {
            to,
            msg: GossipMessage::Echo(Echo {
                cluster: self.local.cluster_name.clone(),
                host: self.local.host_id,
                generation: self.local.generation,
            }),
        });
    }

    fn on_change(
        &mut self,
        now: Instant,
        host: HostId,
        key: AppKey,
        value: &str,
        events: &mut Vec<GossipEvent>,
    ) {
        let Some(p) = self.peers.get_mut(&host) else {
            return;
        };
        events.push(GossipEvent::StateChanged {
            host,
            key,
            value: value.to_string(),
        });
        match key {
            AppKey::InternalAddress => {
                if let Ok(new) = value.parse::<SocketAddr>()
                    && p.addr != Some(new)
                {
                    let old = p.addr.replace(new);
                    events.push(GossipEvent::NodeAddressChanged { host, old, new });
                }
            }
            AppKey::Status => match Status::parse(value) {
                Status::Shutdown => {
                    if p.alive {
                        p.alive = false;
                        events.push(GossipEvent::NodeDown { host, addr: p.addr });
                    }
                }
                Status::Left => {
                    p.alive = false;
                    if p.left_since.is_none() {
                        p.left_since = Some(now);
                        events.push(GossipEvent::NodeRemoved { host, addr: p.addr });
                    }
                }
                _ => p.left_since = None,
            },
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn node(n: u8, generation: i64) -> Gossiper {
        let mut id = [0u8; 16];
        id[0] = n;
        let local = LocalInfo {
            host_id: HostId(id),
            addr: SocketAddr::from(([10, 0, 0, n], 7000)),
            generation,
            cluster_name: "c".into(),
            dc: "dc1".into(),
            rack: "r1".into(),
        };
        let seeds = vec![SocketAddr::from(([10, 0, 0, 1], 7000))];
        let mut g = Gossiper::new(local, seeds, GossipConfig::default());
        g.set_local_state(AppKey::Status, "NORMAL");
        g.set_local_state(AppKey::Tokens, n.to_string());
        g
    }

    /// Runs a SYN from `a` to `b` and everything it sets off (ACK, ACK2, ECHOs) between
    /// the two, until quiet.
    fn exchange(
        a: &mut Gossiper,
        b: &mut Gossiper,
        now: Instant,
    ) -> (Vec<GossipEvent>, Vec<GossipEvent>) {
        let (mut ea, mut eb) = (Vec::new(), Vec::new());
        let mut q: Vec<(bool, GossipMessage)> = vec![(false, a.syn())];
        while let Some((to_a, msg)) = q.pop() {
            let (dst, src, ev) = if to_a {
                (&mut *a, b.local.addr, &mut ea)
            } else {
                (&mut *b, a.local.addr, &mut eb)
            };
            let (out, e) = dst.handle(now, src, msg);
            ev.extend(e);
            let (a_addr, b_addr) = (a.local.addr, b.local.addr);
            for o in out {
                if o.to == a_addr || o.to == b_addr {
                    q.push((o.to == a_addr, o.msg));
                }
            }
        }
        (ea, eb)
    }

    #[test]
    fn two_nodes_learn_each_other() {
        let t = Instant::now();
        let mut rng = StdRng::seed_from_u64(1);
        let (mut a, mut b) = (node(1, 10), node(2, 20));
        // b's first tick gossips to the seed, a.
        let (out, _) = b.tick(t, &mut rng);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].to, a.local.addr);
        let (ea, eb) = exchange(&mut b, &mut a, t);
        assert!(matches!(eb[0], GossipEvent::NodeJoined { .. }));
        assert!(matches!(ea[0], GossipEvent::NodeJoined { .. }));
        assert_eq!(a.endpoint_states(), b.endpoint_states());
        // Discovered but not yet alive until a heartbeat moves.
        assert_eq!(a.live_members().len(), 1);
        b.tick(t, &mut rng);
        let (_, eb) = exchange(&mut b, &mut a, t);
        assert!(eb.contains(&GossipEvent::NodeUp {
            host: b.local.host_id,
            addr: Some(b.local.addr)
        }));
        assert_eq!(a.live_members().len(), 2);
        let ring = a.ring();
        assert_eq!(ring.tokens().len(), 2);
        assert_eq!(ring.primary_owner(2), Some(b.local.host_id));
    }

    #[test]
    fn gossip_targets() {
        let t = Instant::now();
        let mut rng = StdRng::seed_from_u64(9);
        // A lone seed has nobody to talk to, and never talks to itself.
        let mut a = node(1, 1);
        assert!(a.tick(t, &mut rng).0.is_empty());
        // Knowing no live member, a node always gossips to a seed.
        let mut b = node(2, 1);
        for _ in 0..5 {
            let (out, _) = b.tick(t, &mut rng);
            assert_eq!(out.len(), 1);
            assert_eq!(out[0].to, a.local.addr);
            assert!(matches!(out[0].msg, GossipMessage::Syn(_)));
        }
        // Once a knows b is alive, a (a seed itself) gossips to b every round.
        for k in 0..2 {
            b.tick(t + Duration::from_secs(k), &mut rng);
            exchange(&mut b, &mut a, t + Duration::from_secs(k));
        }
        for k in 2..10 {
            let (out, _) = a.tick(t + Duration::from_secs(k), &mut rng);
            assert!(out.iter().any(|o| o.to == b.local.addr));
        }
    }

    #[test]
    fn second_hand_news_is_confirmed_by_echo() {
        let t = Instant::now();
        let mut rng = StdRng::seed_from_u64(5);
        let (mut a, mut b, mut c) = (node(1, 1), node(2, 1), node(3, 1));
        // a hears of c only through b: whatever a sends c is lost.
        for k in 0..6 {
            let now = t + Duration::from_secs(k);
            for g in [&mut a, &mut b, &mut c] {
                g.tick(now, &mut rng);
            }
            exchange(&mut c, &mut b, now);
            exchange(&mut b, &mut a, now);
        }
        assert!(a.endpoint_state(&c.local.host_id).is_some());
        assert!(a.is_alive(&b.local.host_id));
        assert!(!a.is_alive(&c.local.host_id));
        // The next heartbeat news makes a probe c; once c answers, it is up.
        let now = t + Duration::from_secs(10);
        c.tick(now, &mut rng);
        exchange(&mut c, &mut b, now);
        let (acks, _) = b.handle(now, a.local.addr, a.syn());
        let mut echo = None;
        for ack in acks {
            let (out, _) = a.handle(now, b.local.addr, ack.msg);
            echo = out.into_iter().find(|o| o.to == c.local.addr);
        }
        let echo = echo.expect("a probes c");
        assert!(matches!(echo.msg, GossipMessage::Echo(_)));
        let (replies, _) = c.handle(now, a.local.addr, echo.msg);
        let (_, ev) = a.handle(now, c.local.addr, replies[0].msg.clone());
        assert_eq!(
            ev,
            vec![GossipEvent::NodeUp {
                host: c.local.host_id,
                addr: Some(c.local.addr)
            }]
        );
        // A reply from an incarnation we do not know changes nothing.
        let stale = GossipMessage::EchoReply(Echo {
            cluster: "c".into(),
            host: b.local.host_id,
            generation: 99,
        });
        assert!(a.handle(now, b.local.addr, stale).1.is_empty());
    }

    #[test]
    fn seeds_added_at_run_time_are_gossiped_to() {
        let mut id = [0u8; 16];
        id[0] = 9;
        let local = LocalInfo {
            host_id: HostId(id),
            addr: SocketAddr::from(([10, 0, 0, 9], 7000)),
            generation: 1,
            cluster_name: "c".into(),
            dc: "dc1".into(),
            rack: "r1".into(),
        };
        let mut g = Gossiper::new(local, Vec::new(), GossipConfig::default());
        let mut rng = StdRng::seed_from_u64(7);
        let (out, _) = g.tick(Instant::now(), &mut rng);
        assert!(out.is_empty(), "no seed, nobody to talk to: {out:?}");
        let seed = SocketAddr::from(([10, 0, 0, 1], 7000));
        let own = SocketAddr::from(([10, 0, 0, 9], 7000));
        assert_eq!(g.add_seeds([seed, own, seed]), 1);
        assert_eq!(g.add_seeds([seed]), 0);
        assert_eq!(g.seeds(), &[seed]);
        let (out, _) = g.tick(Instant::now(), &mut rng);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].to, seed);
        assert!(matches!(out[0].msg, GossipMessage::Syn(_)));
    }

    #[test]
    fn other_clusters_are_refused() {
        let t = Instant::now();
        let (mut a, mut b) = (node(1, 1), node(2, 1));
        b.local.cluster_name = "other".into();
        let (out, ev) = a.handle(t, b.local.addr, b.syn());
        assert!(out.is_empty());
        assert!(matches!(ev[0], GossipEvent::ClusterMismatch { .. }));
        assert_eq!(a.endpoint_states().len(), 1);
    }

    #[test]
    fn restart_with_new_generation_and_address() {
        let t = Instant::now();
        let (mut a, mut b) = (node(1, 1), node(2, 1));
        b.set_local_state(AppKey::Load, "x");
        for _ in 0..5 {
            b.set_local_state(AppKey::Load, format!("{}", b.version));
        }
        exchange(&mut b, &mut a, t);
        b.tick(t, &mut StdRng::seed_from_u64(0));
        exchange(&mut b, &mut a, t);
        let old_version = a.endpoint_state(&b.local.host_id).unwrap().max_version();
        // Restart: same id, new IP, higher generation, versions start over (lower).
        let mut b2 = node(2, 2);
        b2.local.addr = SocketAddr::from(([10, 0, 9, 9], 7000));
        b2.set_local_state(AppKey::InternalAddress, b2.local.addr.to_string());
        assert!(b2.states[&b2.local.host_id].max_version() < old_version);
        let (_, ev) = exchange(&mut b2, &mut a, t);
        assert!(ev.contains(&GossipEvent::NodeAddressChanged {
            host: b2.local.host_id,
            old: Some(SocketAddr::from(([10, 0, 0, 2], 7000))),
            new: b2.local.addr
        }));
        assert_eq!(a.address_of(&b2.local.host_id), Some(b2.local.addr));
        assert_eq!(
            a.endpoint_state(&b2.local.host_id)
                .unwrap()
                .heartbeat
                .generation,
            2
        );
        // The old incarnation's gossip no longer wins.
        exchange(&mut b, &mut a, t);
        assert_eq!(
            a.endpoint_state(&b2.local.host_id)
                .unwrap()
                .heartbeat
                .generation,
            2
        );
        assert!(
            !ev.iter()
                .any(|e| matches!(e, GossipEvent::NodeJoined { .. }))
        );
    }

    #[test]
    fn shutdown_marks_down_at_once_and_silence_convicts() {
        let t = Instant::now();
        let mut rng = StdRng::seed_from_u64(3);
        let (mut a, mut b, mut c) = (node(1, 1), node(2, 1), node(3, 1));
        for k in 0..3 {
            let now = t + Duration::from_secs(k);
            a.tick(now, &mut rng);
            b.tick(now, &mut rng);
            c.tick(now, &mut rng);
            exchange(&mut b, &mut a, now);
            exchange(&mut c, &mut a, now);
        }
        assert_eq!(a.live_members().len(), 3);
        let out = b.shutdown();
        let to_a: Vec<_> = out.into_iter().filter(|o| o.to == a.local.addr).collect();
        assert_eq!(to_a.len(), 1);
        let (_, ev) = a.handle(
            t + Duration::from_secs(3),
            b.local.addr,
            to_a[0].msg.clone(),
        );
        assert!(ev.contains(&GossipEvent::NodeDown {
            host: b.local.host_id,
            addr: Some(b.local.addr)
        }));
        assert_eq!(a.live_members().len(), 2);
        // Down, but still owning its tokens: its replicas do not move to other nodes.
        assert!(a.ring().host(&b.local.host_id).is_some());
        assert_eq!(a.ring().tokens().len(), 3);
        // c goes silent: convicted by the failure detector, not before ~18 mean intervals.
        let mut down_at = None;
        for k in 4..80 {
            let (_, ev) = a.tick(t + Duration::from_secs(k), &mut rng);
            if ev.iter().any(|e| matches!(e, GossipEvent::NodeDown { .. })) {
                down_at = Some(k);
                break;
            }
        }
        let k = down_at.expect("c convicted");
        assert!((15..50).contains(&k), "convicted at {k}");
        assert_eq!(a.live_members(), vec![a.local.host_id]);
        assert_eq!(a.unreachable_members().len(), 2);
    }

    #[test]
    fn left_nodes_are_removed_and_quarantined() {
        let t = Instant::now();
        let (mut a, mut b) = (node(1, 1), node(2, 1));
        exchange(&mut b, &mut a, t);
        b.set_local_state(AppKey::Status, "LEFT");
        let (_, ev) = exchange(&mut b, &mut a, t);
        assert!(
            ev.iter()
                .any(|e| matches!(e, GossipEvent::NodeRemoved { .. }))
        );
        assert!(a.ring().tokens().len() == 1);
        let ev = a.remove_endpoint(b.local.host_id, t);
        assert_eq!(ev.len(), 1);
        exchange(&mut b, &mut a, t);
        assert!(a.endpoint_state(&b.local.host_id).is_none());
        exchange(&mut b, &mut a, t + Duration::from_secs(61));
        assert!(a.endpoint_state(&b.local.host_id).is_some());
    }
}
