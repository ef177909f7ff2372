//! Replica placement: SimpleStrategy, NetworkTopologyStrategy, LocalStrategy and
//! EverywhereStrategy, computed as Cassandra's `locator` package does, so the replicas we
//! write to are the ones token-aware drivers send requests to.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use crate::ring::{HostId, Ring, TokenRange};

/// How a keyspace places replicas.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ReplicationStrategy {
    /// The first `rf` distinct hosts clockwise from the key's token.
    Simple { rf: usize },
    /// Per data centre, `rf` hosts spread over as many racks as possible.
    NetworkTopology { dcs: BTreeMap<String, usize> },
    /// Only the local node (system keyspaces).
    Local,
    /// Every host (Scylla's `EverywhereStrategy`, used for auth and distributed system tables).
    Everywhere,
}

/// Why a replication map could not be turned into a strategy.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReplicationError {
    #[error("missing replication strategy class")]
    MissingClass,
    #[error("unknown replication strategy class {0}")]
    UnknownClass(String),
    #[error("SimpleStrategy requires a replication_factor strategy option")]
    MissingReplicationFactor,
    #[error("replication factor for {key} must be a non-negative integer, got '{value}'")]
    InvalidReplicationFactor { key: String, value: String },
    #[error("transient replication ({0}) is not supported")]
    Transient(String),
    #[error("unrecognized strategy option {{{option}}} passed to {class}")]
    UnexpectedOption { class: &'static str, option: String },
}

const SIMPLE: &str = "org.apache.cassandra.locator.SimpleStrategy";
const NTS: &str = "org.apache.cassandra.locator.NetworkTopologyStrategy";
const LOCAL: &str = "org.apache.cassandra.locator.LocalStrategy";
const EVERYWHERE: &str = "org.apache.cassandra.locator.EverywhereStrategy";

fn parse_rf(key: &str, value: &str) -> Result<usize, ReplicationError> {
    let v = value.trim();
    if v.contains('/') {
        return Err(ReplicationError::Transient(v.to_string()));
    }
    v.parse::<usize>()
        .map_err(|_| ReplicationError::InvalidReplicationFactor {
            key: key.to_string(),
            value: value.to_string(),
        })
}

impl ReplicationStrategy {
    /// Parses a `system_schema.keyspaces.replication` map.
    ///
    /// `known_dcs` expands NTS's `replication_factor` shorthand to every data centre, as
    /// Cassandra 4 does at `CREATE KEYSPACE`; explicit per-DC options win over it.
    pub fn from_options<'a>(
        options: &BTreeMap<String, String>,
        known_dcs: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, ReplicationError> {
        let class = options.get("class").ok_or(ReplicationError::MissingClass)?;
        let short = class.rsplit('.').next().unwrap_or(class);
        let others = options.iter().filter(|(k, _)| k.as_str() != "class");
        match short {
            "SimpleStrategy" => {
                let mut rf = None;
                for (k, v) in others {
                    if k == "replication_factor" {
                        rf = Some(parse_rf(k, v)?);
                    } else {
                        return Err(ReplicationError::UnexpectedOption {
                            class: "SimpleStrategy",
                            option: k.clone(),
                        });
                    }
                }
                Ok(ReplicationStrategy::Simple {
                    rf: rf.ok_or(ReplicationError::MissingReplicationFactor)?,
                })
            }
            "NetworkTopologyStrategy" => {
                let mut dcs = BTreeMap::new();
                let mut default = None;
                for (k, v) in others {
                    let rf = parse_rf(k, v)?;
                    if k == "replication_factor" {
                        default = Some(rf);
                    } else {
                        dcs.insert(k.clone(), rf);
                    }
                }
                if let Some(rf) = default {
                    for dc in known_dcs {
                        dcs.entry(dc.to_string()).or_insert(rf);
                    }
                }
                Ok(ReplicationStrategy::NetworkTopology { dcs })
            }
            "LocalStrategy" => Ok(ReplicationStrategy::Local),
            "EverywhereStrategy" => Ok(ReplicationStrategy::Everywhere),
            _ => Err(ReplicationError::UnknownClass(class.clone())),
        }
    }

    /// The map as `system_schema.keyspaces.replication` shows it (full class names).
    pub fn to_options(&self) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        match self {
            ReplicationStrategy::Simple { rf } => {
                m.insert("class".into(), SIMPLE.into());
                m.insert("replication_factor".into(), rf.to_string());
            }
            ReplicationStrategy::NetworkTopology { dcs } => {
                m.insert("class".into(), NTS.into());
                for (dc, rf) in dcs {
                    m.insert(dc.clone(), rf.to_string());
                }
            }
            ReplicationStrategy::Local => {
                m.insert("class".into(), LOCAL.into());
            }
            ReplicationStrategy::Everywhere => {
                m.insert("class".into(), EVERYWHERE.into());
            }
        }
        m
    }

    /// Replicas of the range ending at ring index `i` (the range a key token maps into).
    /// `Local` yields nothing here: it needs the local id, which [`TokenMetadata`] knows.
    pub fn replicas_at(&self, ring: &Ring, i: usize) -> Vec<HostId> {
        let toks = ring.tokens();
        let n = toks.len();
        if n == 0 {
            return Vec::new();
        }
        match self {
            ReplicationStrategy::Local => Vec::new(),
            ReplicationStrategy::Simple { rf } => walk_distinct(toks, i, *rf),
            ReplicationStrategy::Everywhere => walk_distinct(toks, i, usize::MAX),
            ReplicationStrategy::NetworkTopology { dcs } => {
                let topo = DcTopology::new(ring);
                let mut out = Vec::new();
                for (dc, &rf) in dcs {
                    topo.nts_in_dc(ring, i, dc, rf, &mut out);
                }
                out
            }
        }
    }
}

fn walk_distinct(toks: &[(i64, HostId)], i: usize, rf: usize) -> Vec<HostId> {
    let n = toks.len();
    let mut out: Vec<HostId> = Vec::new();
    for k in 0..n {
        if out.len() >= rf {
            break;
        }
        let h = toks[(i + k) % n].1;
        if !out.contains(&h) {
            out.push(h);
        }
    }
    out
}

/// Per-DC facts NTS needs, computed once per ring rather than once per token.
struct DcTopology {
    /// Ring indexes of each DC's tokens, in ring order.
    token_idx: HashMap<String, Vec<usize>>,
    racks: HashMap<String, BTreeSet<String>>,
    hosts: HashMap<String, BTreeSet<HostId>>,
}

impl DcTopology {
    fn new(ring: &Ring) -> Self {
        let mut t = DcTopology {
            token_idx: HashMap::new(),
            racks: HashMap::new(),
            hosts: HashMap::new(),
        };
        for (i, (_, h)) in ring.tokens().iter().enumerate() {
            let Some(info) = ring.host(h) else { continue };
            t.token_idx.entry(info.dc.clone()).or_default().push(i);
            t.racks
                .entry(info.dc.clone())
                .or_default()
                .insert(info.rack.clone());
            t.hosts.entry(info.dc.clone()).or_default().insert(*h);
        }
        t
    }

    /// Cassandra's `NetworkTopologyStrategy.DatacenterEndpoints`: a host on a new rack is
    /// always taken; a host on an already used rack only while `rf - racks` repeats remain,
    /// which leaves room for one replica on every rack. Drivers phrase it as "skip repeats,
    /// append them once every rack is used"; both choose the same set of hosts.
    fn nts_in_dc(&self, ring: &Ring, i: usize, dc: &str, rf: usize, out: &mut Vec<HostId>) {
        let (Some(idx), Some(racks), Some(hosts)) = (
            self.token_idx.get(dc),
            self.racks.get(dc),
            self.hosts.get(dc),
        ) else {
            return;
        };
        let mut rf_left = rf.min(hosts.len());
        if rf_left == 0 {
            return;
        }
        let mut repeats = rf as i64 - racks.len() as i64;
        let mut used_racks: BTreeSet<&str> = BTreeSet::new();
        let start = idx.partition_point(|&j| j < i);
        let toks = ring.tokens();
        let mut taken: Vec<HostId> = Vec::new();
        for k in 0..idx.len() {
            let h = toks[idx[(start + k) % idx.len()]].1;
            if taken.contains(&h) {
                continue;
            }
            let rack = ring.host(&h).map(|x| x.rack.as_str()).unwrap_or("");
            if used_racks.insert(rack) {
                taken.push(h);
                rf_left -= 1;
            } else if repeats > 0 {
                taken.push(h);
                repeats -= 1;
                rf_left -= 1;
            }
            if rf_left == 0 {
                break;
            }
        }
        out.extend(taken);
    }
}

/// Replicas per ring range for one strategy, indexed like [`Ring::tokens`].
#[derive(Debug)]
pub struct ReplicaMap {
    replicas: Vec<Arc<[HostId]>>,
}

impl ReplicaMap {
    /// Computes every range's replicas.
    pub fn compute(ring: &Ring, strategy: &ReplicationStrategy, local: HostId) -> Self {
        let n = ring.tokens().len();
        let replicas = match strategy {
            ReplicationStrategy::Local => {
                let one: Arc<[HostId]> = Arc::from(vec![local]);
                vec![one; n.max(1)]
            }
            ReplicationStrategy::NetworkTopology { dcs } => {
                let topo = DcTopology::new(ring);
                (0..n)
                    .map(|i| {
                        let mut out = Vec::new();
                        for (dc, &rf) in dcs {
                            topo.nts_in_dc(ring, i, dc, rf, &mut out);
                        }
                        Arc::from(out)
                    })
                    .collect()
            }
            s => (0..n).map(|i| Arc::from(s.replicas_at(ring, i))).collect(),
        };
        ReplicaMap { replicas }
    }
}

/// The ring plus cached replica placement per strategy. The cache is dropped whenever the
/// ring changes, so a lookup after a topology change never sees stale replicas.
#[derive(Debug)]
pub struct TokenMetadata {
    ring: Ring,
    local: HostId,
    cache: Mutex<HashMap<ReplicationStrategy, Arc<ReplicaMap>>>,
}

impl TokenMetadata {
    pub fn new(local: HostId, ring: Ring) -> Self {
        TokenMetadata {
            ring,
            local,
            cache: Mutex::new(HashMap::new()),
        }
    }

    pub fn ring(&self) -> &Ring {
        &self.ring
    }

    pub fn local(&self) -> HostId {
        self.local
    }

    /// Changes the ring and invalidates cached placements.
    pub fn update_ring<R>(&mut self, f: impl FnOnce(&mut Ring) -> R) -> R {
        let r = f(&mut self.ring);
        self.cache
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        r
    }

    fn map(&self, strategy: &ReplicationStrategy) -> Arc<ReplicaMap> {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .entry(strategy.clone())
            .or_insert_with(|| Arc::new(ReplicaMap::compute(&self.ring, strategy, self.local)))
            .clone()
    }

    /// Replicas of key token `t`, primary first. Empty if the ring is (except for `Local`).
    pub fn natural_replicas(&self, strategy: &ReplicationStrategy, t: i64) -> Arc<[HostId]> {
        if *strategy == ReplicationStrategy::Local {
            return Arc::from(vec![self.local]);
        }
        if self.ring.is_empty() {
            return Arc::from(Vec::new());
        }
        self.map(strategy).replicas[self.ring.primary_index(t)].clone()
    }

    /// Ranges `host` holds a replica of, in ring order (for ownership and streaming).
    pub fn ranges_for(&self, strategy: &ReplicationStrategy, host: &HostId) -> Vec<TokenRange> {
        if self.ring.is_empty() {
            return Vec::new();
        }
        if *strategy == ReplicationStrategy::Local {
            return if *host == self.local {
                vec![TokenRange {
                    start: i64::MIN,
                    end: i64::MIN,
                }]
            } else {
                Vec::new()
            };
        }
        let map = self.map(strategy);
        (0..self.ring.tokens().len())
            .filter(|&i| map.replicas[i].contains(host))
            .map(|i| self.ring.range_at(i))
            .collect()
    }

    /// Fraction of the data `host` holds a replica of (`nodetool status` "Owns (effective)").
    pub fn effective_ownership(&self, strategy: &ReplicationStrategy, host: &HostId) -> f64 {
        self.ranges_for(strategy, host)
            .iter()
            .map(|r| r.fraction())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::tests::{hid, info};
    use proptest::prelude::*;

    fn opts(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parse_replication_maps() {
        let s = ReplicationStrategy::from_options(
            &opts(&[("class", SIMPLE), ("replication_factor", "3")]),
            [],
        )
        .unwrap();
        assert_eq!(s, ReplicationStrategy::Simple { rf: 3 });
        assert_eq!(
            ReplicationStrategy::from_options(&s.to_options(), []),
            Ok(s)
        );
        let n = ReplicationStrategy::from_options(
            &opts(&[
                ("class", "NetworkTopologyStrategy"),
                ("dc1", "3"),
                ("dc2", "0"),
            ]),
            [],
        )
        .unwrap();
        assert_eq!(
            n,
            ReplicationStrategy::NetworkTopology {
                dcs: [("dc1".to_string(), 3), ("dc2".to_string(), 0)].into()
            }
        );
        let auto = ReplicationStrategy::from_options(
            &opts(&[("class", NTS), ("replication_factor", "2"), ("dc2", "1")]),
            ["dc1", "dc2"],
        )
        .unwrap();
        assert_eq!(
            auto,
            ReplicationStrategy::NetworkTopology {
                dcs: [("dc1".to_string(), 2), ("dc2".to_string(), 1)].into()
            }
        );
        assert_eq!(
            ReplicationStrategy::from_options(&opts(&[("class", "LocalStrategy")]), []),
            Ok(ReplicationStrategy::Local)
        );
        assert_eq!(
            ReplicationStrategy::from_options(&opts(&[("class", EVERYWHERE)]), []),
            Ok(ReplicationStrategy::Everywhere)
        );
    }

    #[test]
    fn parse_errors() {
        use ReplicationError::*;
        let p = |kv: &[(&str, &str)]| ReplicationStrategy::from_options(&opts(kv), []);
        assert_eq!(p(&[("replication_factor", "1")]), Err(MissingClass));
        assert_eq!(p(&[("class", "Foo")]), Err(UnknownClass("Foo".to_string())));
        assert_eq!(
            p(&[("class", "SimpleStrategy")]),
            Err(MissingReplicationFactor)
        );
        assert!(matches!(
            p(&[("class", "SimpleStrategy"), ("replication_factor", "-1")]),
            Err(InvalidReplicationFactor { .. })
        ));
        assert!(matches!(
            p(&[
                ("class", "SimpleStrategy"),
                ("replication_factor", "1"),
                ("dc1", "1")
            ]),
            Err(UnexpectedOption { .. })
        ));
        assert!(matches!(
            p(&[("class", "NetworkTopologyStrategy"), ("dc1", "3/1")]),
            Err(Transient(_))
        ));
    }

    fn three_racks() -> Ring {
        // dc1: hosts 1..=6 on racks a,a,b,b,c,c ; dc2: hosts 7,8 on one rack.
        let mut r = Ring::new();
        let racks = ["a", "a", "b", "b", "c", "c"];
        for (k, rack) in racks.iter().enumerate() {
            let n = k as u8 + 1;
            r.set_host(hid(n), info(n, "dc1", rack), &[n as i64 * 100])
                .unwrap();
        }
        r.set_host(hid(7), info(7, "dc2", "x"), &[150]).unwrap();
        r.set_host(hid(8), info(8, "dc2", "x"), &[350]).unwrap();
        r
    }

    #[test]
    fn simple_strategy_walks_distinct_hosts() {
        let tm = TokenMetadata::new(hid(1), three_racks());
        let s = ReplicationStrategy::Simple { rf: 3 };
        assert_eq!(&*tm.natural_replicas(&s, 101), &[hid(7), hid(2), hid(3)]);
        assert_eq!(&*tm.natural_replicas(&s, 601), &[hid(1), hid(7), hid(2)]);
        let all = ReplicationStrategy::Simple { rf: 50 };
        assert_eq!(tm.natural_replicas(&all, 0).len(), 8);
        assert_eq!(
            tm.natural_replicas(&ReplicationStrategy::Everywhere, 0)
                .len(),
            8
        );
        assert_eq!(
            &*tm.natural_replicas(&ReplicationStrategy::Local, 0),
            &[hid(1)]
        );
    }

    #[test]
    fn nts_prefers_new_racks() {
        let tm = TokenMetadata::new(hid(1), three_racks());
        let s = ReplicationStrategy::NetworkTopology {
            dcs: [("dc1".to_string(), 3), ("dc2".to_string(), 1)].into(),
        };
        // From 100: host1(a), host2(a) skipped, host3(b), host4(b) skipped, host5(c).
        assert_eq!(
            &*tm.natural_replicas(&s, 100),
            &[hid(1), hid(3), hid(5), hid(7)]
        );
        let s4 = ReplicationStrategy::NetworkTopology {
            dcs: [("dc1".to_string(), 4)].into(),
        };
        // One repeat allowed: host2 (rack a again) is the first repeat met.
        let r: BTreeSet<_> = tm.natural_replicas(&s4, 100).iter().copied().collect();
        assert_eq!(r, [hid(1), hid(2), hid(3), hid(5)].into());
        let big = ReplicationStrategy::NetworkTopology {
            dcs: [("dc2".to_string(), 5), ("nowhere".to_string(), 3)].into(),
        };
        assert_eq!(tm.natural_replicas(&big, 0).len(), 2);
    }

    #[test]
    fn ranges_and_cache_invalidation() {
        let mut tm = TokenMetadata::new(hid(1), three_racks());
        let s = ReplicationStrategy::Simple { rf: 2 };
        let total: f64 = (1..=8).map(|n| tm.effective_ownership(&s, &hid(n))).sum();
        assert!((total - 2.0).abs() < 1e-9);
        assert_eq!(tm.natural_replicas(&s, 100)[0], hid(1));
        tm.update_ring(|r| r.remove_host(&hid(1)));
        assert_eq!(tm.natural_replicas(&s, 100)[0], hid(7));
        assert!(tm.ranges_for(&s, &hid(1)).is_empty());
    }

    /// Independent model written from the drivers' description: per DC, walk clockwise,
    /// skip hosts on used racks until every rack has one, then append the skipped ones.
    fn naive_nts(ring: &Ring, t: i64, dcs: &BTreeMap<String, usize>) -> BTreeSet<HostId> {
        let toks = ring.tokens();
        let n = toks.len();
        let mut start = 0;
        while start < n && toks[start].0 < t {
            start += 1;
        }
        let mut result = BTreeSet::new();
        for (dc, &rf) in dcs {
            let in_dc: Vec<HostId> = (0..n)
                .map(|k| toks[(start + k) % n].1)
                .filter(|h| ring.host(h).unwrap().dc == *dc)
                .collect();
            let all_racks: BTreeSet<String> = in_dc
                .iter()
                .map(|h| ring.host(h).unwrap().rack.clone())
                .collect();
            let mut chosen: Vec<HostId> = Vec::new();
            let mut skipped: Vec<HostId> = Vec::new();
            let mut racks = BTreeSet::new();
            for h in in_dc {
                if chosen.len() >= rf {
                    break;
                }
                if chosen.contains(&h) || skipped.contains(&h) {
                    continue;
                }
                let rack = ring.host(&h).unwrap().rack.clone();
                if racks.contains(&rack) && racks.len() < all_racks.len() {
                    skipped.push(h);
                    continue;
                }
                chosen.push(h);
                racks.insert(rack);
                if racks.len() == all_racks.len() {
                    for s in skipped.drain(..) {
                        if chosen.len() < rf {
                            chosen.push(s);
                        }
                    }
                }
            }
            result.extend(chosen);
        }
        result
    }

    fn naive_simple(ring: &Ring, t: i64, rf: usize) -> Vec<HostId> {
        let mut sorted: Vec<(i64, HostId)> = ring.tokens().to_vec();
        sorted.sort();
        let mut order: Vec<HostId> = sorted.iter().filter(|x| x.0 >= t).map(|x| x.1).collect();
        order.extend(sorted.iter().filter(|x| x.0 < t).map(|x| x.1));
        let mut out = Vec::new();
        for h in order {
            if out.len() < rf && !out.contains(&h) {
                out.push(h);
            }
        }
        out
    }

    fn arb_ring() -> impl Strategy<Value = Ring> {
        prop::collection::vec(
            (
                0u8..3,
                0u8..3,
                prop::collection::btree_set(any::<i64>(), 1..6),
            ),
            1..12,
        )
        .prop_map(|hosts| {
            let mut r = Ring::new();
            for (k, (dc, rack, toks)) in hosts.into_iter().enumerate() {
                let n = k as u8 + 1;
                let toks: Vec<i64> = toks.into_iter().collect();
                // Colliding random tokens: just drop that host.
                let _ = r.set_host(
                    hid(n),
                    info(n, &format!("dc{dc}"), &format!("r{rack}")),
                    &toks,
                );
            }
            r
        })
        .prop_filter("non-empty", |r| !r.is_empty())
    }

    proptest! {
        #[test]
        fn placement_matches_naive_model(
            ring in arb_ring(),
            probes in prop::collection::vec(any::<i64>(), 1..20),
            rf in 1usize..5,
            rf0 in 0usize..5, rf1 in 0usize..5, rf2 in 0usize..5,
        ) {
            let tm = TokenMetadata::new(hid(1), ring.clone());
            let dcs: BTreeMap<String, usize> =
                [("dc0".to_string(), rf0), ("dc1".to_string(), rf1), ("dc2".to_string(), rf2)].into();
            let nts = ReplicationStrategy::NetworkTopology { dcs: dcs.clone() };
            let simple = ReplicationStrategy::Simple { rf };
            let mut probes = probes;
            probes.extend(ring.tokens().iter().map(|x| x.0));
            for t in probes {
                prop_assert_eq!(tm.natural_replicas(&simple, t).to_vec(), naive_simple(&ring, t, rf));
                let got: Vec<HostId> = tm.natural_replicas(&nts, t).to_vec();
                let set: BTreeSet<HostId> = got.iter().copied().collect();
                prop_assert_eq!(set.len(), got.len(), "duplicate replica");
                prop_assert_eq!(set, naive_nts(&ring, t, &dcs));
            }
        }
    }
}
