//! Whole clusters of gossipers in one process: a lossy in-memory network, partitions,
//! crashes, restarts on new addresses. Everything is driven by a seeded RNG and a simulated
//! clock, so a failing case replays exactly.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use shoal_gossip::gossiper::{GossipConfig, GossipEvent, Gossiper, LocalInfo, Outgoing};
use shoal_gossip::ring::HostId;
use shoal_gossip::state::AppKey;

fn host(n: usize) -> HostId {
    let mut b = [0u8; 16];
    b[0] = 0x5a;
    b[15] = n as u8;
    HostId(b)
}

fn addr(n: usize, ip_gen: u8) -> SocketAddr {
    SocketAddr::from(([10, ip_gen, 0, n as u8], 7000))
}

struct Node {
    g: Gossiper,
    running: bool,
    events: Vec<GossipEvent>,
}

struct Sim {
    nodes: Vec<Node>,
    seeds: Vec<SocketAddr>,
    now: Instant,
    rng: StdRng,
    loss: f64,
    /// Partition side per node; messages only pass between equal sides.
    side: Vec<u8>,
    messages: usize,
}

fn make(n: usize, generation: i64, ip_gen: u8, seeds: Vec<SocketAddr>, cluster: &str) -> Gossiper {
    let local = LocalInfo {
        host_id: host(n),
        addr: addr(n, ip_gen),
        generation,
        cluster_name: cluster.into(),
        dc: "dc1".into(),
        rack: format!("r{}", n % 3),
    };
    let mut g = Gossiper::new(local, seeds, GossipConfig::default());
    g.set_local_state(AppKey::Status, "NORMAL");
    g.set_local_state(AppKey::Tokens, (n as i64 * 1000).to_string());
    g.set_local_state(AppKey::Schema, "v1");
    g
}

impl Sim {
    fn new(n: usize, seed: u64, loss: f64) -> Sim {
        let seeds = vec![addr(0, 1), addr(1, 1)];
        let nodes = (0..n)
            .map(|k| Node {
                g: make(k, 1, 1, seeds.clone(), "sim"),
                running: true,
                events: Vec::new(),
            })
            .collect();
        Sim {
            nodes,
            seeds,
            now: Instant::now(),
            rng: StdRng::seed_from_u64(seed),
            loss,
            side: vec![0; n],
            messages: 0,
        }
    }

    fn index_of(&self, a: SocketAddr) -> Option<usize> {
        self.nodes
            .iter()
            .position(|n| n.running && n.g.local().addr == a)
    }

    fn deliver(&mut self, from: usize, out: Vec<Outgoing>) {
        let mut q: VecDeque<(usize, Outgoing)> = out.into_iter().map(|o| (from, o)).collect();
        while let Some((src, o)) = q.pop_front() {
            self.messages += 1;
            let Some(dst) = self.index_of(o.to) else {
                continue;
            };
            if self.side[src] != self.side[dst] || self.rng.random::<f64>() < self.loss {
                continue;
            }
            let from_addr = self.nodes[src].g.local().addr;
            let (replies, ev) = self.nodes[dst].g.handle(self.now, from_addr, o.msg);
            self.nodes[dst].events.extend(ev);
            q.extend(replies.into_iter().map(|r| (dst, r)));
        }
    }

    fn round(&mut self) {
        self.now += Duration::from_secs(1);
        // Everyone gossips from the state they had at the start of the round, so news
        // cannot ride a chain of ticks across the whole cluster in one round.
        let mut outs = Vec::new();
        for i in 0..self.nodes.len() {
            if !self.nodes[i].running {
                continue;
            }
            let (out, ev) = self.nodes[i].g.tick(self.now, &mut self.rng);
            self.nodes[i].events.extend(ev);
            outs.push((i, out));
        }
        for (i, out) in outs {
            self.deliver(i, out);
        }
    }

    /// Every running node has every running node's exact state and sees it alive at its
    /// current address; stopped nodes are seen down.
    fn converged(&self) -> bool {
        let running: Vec<usize> = (0..self.nodes.len())
            .filter(|&k| self.nodes[k].running)
            .collect();
        for &i in &running {
            let gi = &self.nodes[i].g;
            for (j, nj) in self.nodes.iter().enumerate() {
                if i == j {
                    continue;
                }
                if !nj.running {
                    if gi.is_alive(&host(j)) {
                        return false;
                    }
                    continue;
                }
                let own = nj.g.endpoint_state(&host(j)).expect("own state");
                let Some(view) = gi.endpoint_state(&host(j)) else {
                    return false;
                };
                if view.heartbeat.generation != own.heartbeat.generation
                    || view.states != own.states
                    || !gi.is_alive(&host(j))
                    || gi.address_of(&host(j)) != Some(nj.g.local().addr)
                {
                    return false;
                }
            }
        }
        true
    }

    fn run_until_converged(&mut self, max_rounds: usize) -> Option<usize> {
        for r in 1..=max_rounds {
            self.round();
            if self.converged() {
                return Some(r);
            }
        }
        None
    }

    fn set_partition(&mut self, split: usize) {
        for (k, s) in self.side.iter_mut().enumerate() {
            *s = u8::from(k >= split);
        }
    }
}

const BOUND: usize = 60;

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

    #[test]
    fn converges_partitions_heal_restarts_and_moves(
        n in 5usize..=20,
        seed in any::<u64>(),
        loss in 0.0f64..0.2,
    ) {
        let mut sim = Sim::new(n, seed, loss);
        let r = sim.run_until_converged(BOUND);
        prop_assert!(r.is_some(), "no convergence from cold start with n={}", n);

        // Partition: each side (a seed on each) must see the other side down.
        let split = n / 2;
        sim.set_partition(split);
        for _ in 0..80 {
            sim.round();
        }
        for i in 0..n {
            for j in 0..n {
                let same = (i < split) == (j < split);
                prop_assert_eq!(sim.nodes[i].g.is_alive(&host(j)), same, "{} sees {}", i, j);
            }
        }
        sim.set_partition(0);
        let r = sim.run_until_converged(BOUND);
        prop_assert!(r.is_some(), "partition did not heal");

        // Crash a non-seed node, restart it with a newer generation on a new IP.
        let k = 2 + (seed as usize % (n - 2));
        sim.nodes[k].running = false;
        for _ in 0..5 {
            sim.round();
        }
        sim.nodes[k] = Node {
            g: make(k, 2, 2, sim.seeds.clone(), "sim"),
            running: true,
            events: Vec::new(),
        };
        for node in sim.nodes.iter_mut() {
            node.events.clear();
        }
        let r = sim.run_until_converged(BOUND);
        prop_assert!(r.is_some(), "restart on new address did not converge");
        for (i, node) in sim.nodes.iter().enumerate() {
            if i == k {
                continue;
            }
            let moved = node.events.iter().any(|e| matches!(e,
                GossipEvent::NodeAddressChanged { host: h, new, .. }
                    if *h == host(k) && *new == addr(k, 2)));
            prop_assert!(moved, "node {} did not see {} move", i, k);
            let rejoined = node.events.iter().any(|e| matches!(e,
                GossipEvent::NodeJoined { host: h, .. } if *h == host(k)));
            prop_assert!(!rejoined, "node {} took {} for a new node", i, k);
            prop_assert_eq!(node.g.address_of(&host(k)), Some(addr(k, 2)));
        }

        // Clean shutdown: peers mark it down without waiting for the failure detector.
        let out = sim.nodes[k].g.shutdown();
        sim.deliver(k, out);
        sim.nodes[k].running = false;
        let r = sim.run_until_converged(10);
        prop_assert!(r.is_some(), "shutdown not seen within 10 rounds");
    }
}

#[test]
fn another_cluster_never_merges() {
    let mut sim = Sim::new(6, 7, 0.0);
    // Node 5 was configured for another cluster but points at our seeds.
    sim.nodes[5].g = make(5, 1, 1, sim.seeds.clone(), "other");
    for _ in 0..30 {
        sim.round();
    }
    for i in 0..5 {
        assert!(sim.nodes[i].g.endpoint_state(&host(5)).is_none());
        assert_eq!(sim.nodes[i].g.live_members().len(), 5);
    }
    assert!(
        sim.nodes[0]
            .events
            .iter()
            .any(|e| matches!(e, GossipEvent::ClusterMismatch { .. }))
    );
}

#[test]
fn rounds_to_converge_grow_slowly() {
    let mut worst = HashMap::new();
    for n in [5usize, 10, 20] {
        for seed in 0..3 {
            let mut sim = Sim::new(n, seed, 0.05);
            let r = sim.run_until_converged(BOUND).expect("converges");
            let w = worst.entry(n).or_insert(0);
            *w = (*w).max(r);
        }
    }
    // Gossip spreads epidemically; 20 nodes must not take four times as long as 5.
    assert!(worst[&20] <= 4 * worst[&5].max(5), "{worst:?}");
}

#[test]
fn decommission_and_quick_restart_in_place() {
    for seed in 0..4 {
        let mut sim = Sim::new(8, seed, 0.1);
        sim.run_until_converged(BOUND).expect("cold start");

        // Node 3 leaves the ring, then stops.
        sim.nodes[3].g.set_local_state(AppKey::Status, "LEFT");
        let mut rounds = 0;
        while !(0..8).filter(|&i| i != 3).all(|i| {
            sim.nodes[i]
                .events
                .iter()
                .any(|e| matches!(e, GossipEvent::NodeRemoved { host: h, .. } if *h == host(3)))
        }) {
            sim.round();
            rounds += 1;
            assert!(rounds < BOUND, "LEFT did not spread (seed {seed})");
        }
        sim.nodes[3].running = false;
        for i in (0..8).filter(|&i| i != 3) {
            let ring = sim.nodes[i].g.ring();
            assert!(ring.host(&host(3)).is_none());
            assert_eq!(ring.hosts().count(), 7);
        }

        // Node 4 crashes and is back on the same address before anyone convicts it.
        for node in sim.nodes.iter_mut() {
            node.events.clear();
        }
        sim.nodes[4].g = make(4, 2, 1, sim.seeds.clone(), "sim");
        sim.run_until_converged(BOUND).expect("restart in place");
        for (i, node) in sim.nodes.iter().enumerate() {
            if i == 4 || i == 3 {
                continue;
            }
            assert!(!node.events.iter().any(|e| matches!(e,
                GossipEvent::NodeJoined { host: h, .. }
                | GossipEvent::NodeAddressChanged { host: h, .. } if *h == host(4))));
            let st = node.g.endpoint_state(&host(4)).unwrap();
            assert_eq!(st.heartbeat.generation, 2);
        }
    }
}
