//! Consistency-level arithmetic, pure: how many replicas must answer (Cassandra's
//! `ConsistencyLevel.blockFor`), whether enough are alive to try (`assureSufficientLiveReplicas`,
//! the Unavailable error), which replicas a read contacts, and when a write has enough acks.
//!
//! Counts follow the keyspace's *configured* replication factor, not the number of hosts that
//! happen to hold the token: RF=3 on a two-node ring makes QUORUM need 2 and ALL need 3 (and
//! fail Unavailable), exactly as Cassandra answers.

use std::collections::BTreeMap;

use shoal_cql::error::{Consistency, CqlError};
use shoal_gossip::replication::ReplicationStrategy;
use shoal_gossip::ring::HostId;

/// Why a consistency level cannot be used for an operation.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConsistencyError {
    #[error("ANY ConsistencyLevel is only supported for writes")]
    AnyForRead,
    #[error("You must use conditional updates for serializable writes")]
    SerialForWrite,
}

impl From<ConsistencyError> for CqlError {
    fn from(e: ConsistencyError) -> CqlError {
        CqlError::invalid(e.to_string())
    }
}

/// What a consistency level asks of one replica set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Requirement {
    /// `n` answers from any replicas.
    Total(usize),
    /// `n` answers from replicas in the coordinator's datacenter.
    Local(usize),
    /// `n` answers from each listed datacenter (EACH_QUORUM under NTS).
    PerDc(Vec<(String, usize)>),
}

impl Requirement {
    /// Total answers needed (the `block_for` of timeout errors).
    pub fn block_for(&self) -> usize {
        match self {
            Requirement::Total(n) | Requirement::Local(n) => *n,
            Requirement::PerDc(v) => v.iter().map(|(_, n)| n).sum(),
        }
    }
}

pub fn quorum_for(rf: usize) -> usize {
    rf / 2 + 1
}

/// The keyspace's replication factor in total. `hosts` is the ring's host count, which is
/// what EverywhereStrategy replicates to.
pub fn total_rf(strategy: &ReplicationStrategy, hosts: usize) -> usize {
    match strategy {
        ReplicationStrategy::Simple { rf } => *rf,
        ReplicationStrategy::NetworkTopology { dcs } => dcs.values().sum(),
        ReplicationStrategy::Local => 1,
        ReplicationStrategy::Everywhere => hosts,
    }
}

/// Replication factor in `dc`; strategies that ignore datacenters count the total, as
/// Cassandra's `localQuorumFor` does.
pub fn dc_rf(strategy: &ReplicationStrategy, dc: &str, hosts: usize) -> usize {
    match strategy {
        ReplicationStrategy::NetworkTopology { dcs } => dcs.get(dc).copied().unwrap_or(0),
        other => total_rf(other, hosts),
    }
}

/// The requirement of `cl` on a keyspace. SERIAL/LOCAL_SERIAL reads are answered like
/// QUORUM/LOCAL_QUORUM reads (what Cassandra does for the read part of a serial read once
/// no Paxos round is in progress); Paxos itself is the LWT path.
pub fn requirement(
    cl: Consistency,
    strategy: &ReplicationStrategy,
    local_dc: &str,
    hosts: usize,
    is_read: bool,
) -> Result<Requirement, ConsistencyError> {
    use Consistency::*;
    let total = total_rf(strategy, hosts);
    Ok(match cl {
        Any if is_read => return Err(ConsistencyError::AnyForRead),
        Serial | LocalSerial if !is_read => return Err(ConsistencyError::SerialForWrite),
        Any | One => Requirement::Total(1),
        Two => Requirement::Total(2),
        Three => Requirement::Total(3),
        Quorum | Serial => Requirement::Total(quorum_for(total)),
        All => Requirement::Total(total),
        LocalOne => Requirement::Local(1),
        LocalQuorum | LocalSerial => {
            Requirement::Local(quorum_for(dc_rf(strategy, local_dc, hosts)))
        }
        EachQuorum => match strategy {
            ReplicationStrategy::NetworkTopology { dcs } => Requirement::PerDc(
                dcs.iter()
                    .filter(|(_, rf)| **rf > 0)
                    .map(|(dc, rf)| (dc.clone(), quorum_for(*rf)))
                    .collect(),
            ),
            _ => Requirement::Total(quorum_for(total)),
        },
    })
}

/// A replica as the selection sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate<'a> {
    pub host: HostId,
    pub dc: &'a str,
    pub alive: bool,
}

/// The Unavailable error when the alive replicas cannot meet `req`; `None` when they can.
/// ANY never fails: a hint on the coordinator satisfies it.
pub fn check_available(
    cl: Consistency,
    req: &Requirement,
    replicas: &[Candidate<'_>],
    local_dc: &str,
) -> Option<CqlError> {
    if cl == Consistency::Any {
        return None;
    }
    let alive_in = |dc: Option<&str>| {
        replicas
            .iter()
            .filter(|c| c.alive && dc.is_none_or(|d| c.dc == d))
            .count()
    };
    let fail = |required: usize, alive: usize| {
        Some(CqlError::Unavailable {
            message: "Cannot achieve consistency level ".to_string() + cl.name(),
            consistency: cl,
            required: required as i32,
            alive: alive as i32,
        })
    };
    match req {
        Requirement::Total(n) => {
            let alive = alive_in(None);
            (alive < *n).then(|| fail(*n, alive)).flatten()
        }
        Requirement::Local(n) => {
            let alive = alive_in(Some(local_dc));
            (alive < *n).then(|| fail(*n, alive)).flatten()
        }
        Requirement::PerDc(v) => v.iter().find_map(|(dc, n)| {
            let alive = alive_in(Some(dc));
            (alive < *n).then(|| fail(*n, alive)).flatten()
        }),
    }
}

/// Alive replicas in the order a coordinator prefers them: itself, then its datacenter,
/// then the others, each group in placement order (primary first).
pub fn by_proximity<'a>(
    replicas: &[Candidate<'a>],
    local: HostId,
    local_dc: &str,
) -> Vec<Candidate<'a>> {
    let rank = |c: &Candidate<'_>| {
        if c.host == local {
            0
        } else if c.dc == local_dc {
            1
        } else {
            2
        }
    };
    let mut v: Vec<Candidate<'a>> = replicas.iter().filter(|c| c.alive).cloned().collect();
    v.sort_by_key(rank);
    v
}

/// The replicas a read contacts to meet `req`: the closest `n`, only local ones for
/// LOCAL_*, the closest quorum of each datacenter for EACH_QUORUM. Call after
/// [`check_available`]; fewer than needed comes back if it was skipped.
pub fn read_targets(
    req: &Requirement,
    replicas: &[Candidate<'_>],
    local: HostId,
    local_dc: &str,
) -> Vec<HostId> {
    let ordered = by_proximity(replicas, local, local_dc);
    match req {
        Requirement::Total(n) => ordered.iter().take(*n).map(|c| c.host).collect(),
        Requirement::Local(n) => ordered
            .iter()
            .filter(|c| c.dc == local_dc)
            .take(*n)
            .map(|c| c.host)
            .collect(),
        Requirement::PerDc(v) => {
            let mut out = Vec::new();
            for (dc, n) in v {
                out.extend(
                    ordered
                        .iter()
                        .filter(|c| c.dc == dc)
                        .take(*n)
                        .map(|c| c.host),
                );
            }
            out
        }
    }
}

/// Counts acknowledgements against a requirement.
#[derive(Clone, Debug)]
pub struct AckTracker {
    req: Requirement,
    local_dc: String,
    total: usize,
    per_dc: BTreeMap<String, usize>,
}

impl AckTracker {
    pub fn new(req: Requirement, local_dc: &str) -> AckTracker {
        AckTracker {
            req,
            local_dc: local_dc.to_string(),
            total: 0,
            per_dc: BTreeMap::new(),
        }
    }

    /// Records an ack from a replica in `dc`; true once the requirement is met.
    pub fn ack(&mut self, dc: &str) -> bool {
        self.total += 1;
        *self.per_dc.entry(dc.to_string()).or_default() += 1;
        self.done()
    }

    pub fn done(&self) -> bool {
        match &self.req {
            Requirement::Total(n) => self.total >= *n,
            Requirement::Local(n) => self.in_dc(&self.local_dc) >= *n,
            Requirement::PerDc(v) => v.iter().all(|(dc, n)| self.in_dc(dc) >= *n),
        }
    }

    fn in_dc(&self, dc: &str) -> usize {
        self.per_dc.get(dc).copied().unwrap_or(0)
    }

    /// Acks that count toward the requirement (the `received` of timeout errors).
    pub fn received(&self) -> usize {
        match &self.req {
            Requirement::Total(_) => self.total,
            Requirement::Local(_) => self.in_dc(&self.local_dc),
            Requirement::PerDc(v) => v.iter().map(|(dc, n)| self.in_dc(dc).min(*n)).sum(),
        }
    }

    pub fn block_for(&self) -> usize {
        self.req.block_for()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn h(n: u8) -> HostId {
        HostId([n; 16])
    }

    fn nts(v: &[(&str, usize)]) -> ReplicationStrategy {
        ReplicationStrategy::NetworkTopology {
            dcs: v.iter().map(|(d, r)| (d.to_string(), *r)).collect(),
        }
    }

    #[test]
    fn block_for_matches_cassandra() {
        use Consistency::*;
        let s3 = ReplicationStrategy::Simple { rf: 3 };
        let bf =
            |cl, s: &ReplicationStrategy| requirement(cl, s, "dc1", 6, false).unwrap().block_for();
        assert_eq!(bf(Any, &s3), 1);
        assert_eq!(bf(One, &s3), 1);
        assert_eq!(bf(Two, &s3), 2);
        assert_eq!(bf(Three, &s3), 3);
        assert_eq!(bf(Quorum, &s3), 2);
        assert_eq!(bf(All, &s3), 3);
        assert_eq!(bf(LocalOne, &s3), 1);
        assert_eq!(bf(LocalQuorum, &s3), 2);
        assert_eq!(bf(EachQuorum, &s3), 2);
        let n = nts(&[("dc1", 3), ("dc2", 5), ("dc3", 0)]);
        assert_eq!(bf(Quorum, &n), 5);
        assert_eq!(bf(All, &n), 8);
        assert_eq!(bf(LocalQuorum, &n), 2);
        assert_eq!(
            requirement(EachQuorum, &n, "dc1", 6, false).unwrap(),
            Requirement::PerDc(vec![("dc1".into(), 2), ("dc2".into(), 3)])
        );
        assert_eq!(bf(Quorum, &ReplicationStrategy::Everywhere), 4);
        assert_eq!(
            requirement(Serial, &n, "dc1", 6, true).unwrap(),
            Requirement::Total(5)
        );
        assert_eq!(
            requirement(LocalSerial, &n, "dc2", 6, true).unwrap(),
            Requirement::Local(3)
        );
        assert_eq!(
            requirement(Any, &n, "dc1", 6, true),
            Err(ConsistencyError::AnyForRead)
        );
        assert_eq!(
            requirement(Serial, &n, "dc1", 6, false),
            Err(ConsistencyError::SerialForWrite)
        );
    }

    #[test]
    fn unavailable_reports_required_and_alive() {
        let c = |n, dc, alive| Candidate {
            host: h(n),
            dc,
            alive,
        };
        let reps = [c(1, "dc1", true), c(2, "dc1", false), c(3, "dc2", true)];
        let all = Requirement::Total(3);
        match check_available(Consistency::All, &all, &reps, "dc1") {
            Some(CqlError::Unavailable {
                required, alive, ..
            }) => assert_eq!((required, alive), (3, 2)),
            other => panic!("{other:?}"),
        }
        assert!(check_available(Consistency::Any, &all, &reps, "dc1").is_none());
        assert!(
            check_available(Consistency::LocalOne, &Requirement::Local(1), &reps, "dc1").is_none()
        );
        assert!(
            check_available(
                Consistency::LocalQuorum,
                &Requirement::Local(2),
                &reps,
                "dc1"
            )
            .is_some()
        );
        // Local first, then the same DC, then remote.
        let order = read_targets(&Requirement::Total(2), &reps, h(3), "dc2");
        assert_eq!(order, vec![h(3), h(1)]);
        let local = read_targets(&Requirement::Local(1), &reps, h(2), "dc1");
        assert_eq!(local, vec![h(1)]);
    }

    fn arb_replicas() -> impl Strategy<Value = Vec<(u8, bool)>> {
        // (dc index, alive) per replica.
        prop::collection::vec((0u8..3, any::<bool>()), 1..9)
    }

    fn arb_cl() -> impl Strategy<Value = Consistency> {
        prop::sample::select(vec![
            Consistency::One,
            Consistency::Two,
            Consistency::Three,
            Consistency::Quorum,
            Consistency::All,
            Consistency::LocalOne,
            Consistency::LocalQuorum,
            Consistency::EachQuorum,
        ])
    }

    proptest! {
        /// If the check passes, the chosen read targets are alive, distinct, and their acks
        /// satisfy the requirement; if it fails, even acks from every alive replica would not.
        #[test]
        fn availability_and_targets_agree(
            reps in arb_replicas(),
            cl in arb_cl(),
            local_idx in 0usize..9,
            rf in prop::collection::vec(0usize..4, 3),
        ) {
            let dcs = ["dc0", "dc1", "dc2"];
            let cands: Vec<Candidate<'_>> = reps
                .iter()
                .enumerate()
                .map(|(i, (dc, alive))| Candidate { host: h(i as u8), dc: dcs[*dc as usize], alive: *alive })
                .collect();
            let local = h((local_idx % cands.len()) as u8);
            let local_dc = cands.iter().find(|c| c.host == local).map(|c| c.dc).unwrap_or("dc0");
            let strategy = nts(&[("dc0", rf[0]), ("dc1", rf[1]), ("dc2", rf[2])]);
            let req = requirement(cl, &strategy, local_dc, cands.len(), true).unwrap();
            let dc_of = |x: &HostId| cands.iter().find(|c| c.host == *x).map(|c| c.dc).unwrap_or("");
            let mut everyone = AckTracker::new(req.clone(), local_dc);
            for c in cands.iter().filter(|c| c.alive) {
                everyone.ack(c.dc);
            }
            let all_alive_suffice = everyone.done() || req.block_for() == 0;
            match check_available(cl, &req, &cands, local_dc) {
                None => {
                    prop_assert!(all_alive_suffice);
                    let targets = read_targets(&req, &cands, local, local_dc);
                    let mut t = AckTracker::new(req.clone(), local_dc);
                    let mut seen = std::collections::HashSet::new();
                    for x in &targets {
                        prop_assert!(seen.insert(*x), "duplicate target");
                        prop_assert!(cands.iter().any(|c| c.host == *x && c.alive));
                        t.ack(dc_of(x));
                    }
                    prop_assert!(t.done() || req.block_for() == 0);
                    prop_assert!(targets.len() <= req.block_for());
                    if !targets.is_empty() && cands.iter().any(|c| c.host == local && c.alive)
                        && !matches!(req, Requirement::PerDc(_))
                    {
                        prop_assert_eq!(targets[0], local);
                    }
                }
                Some(_) => prop_assert!(!all_alive_suffice),
            }
        }
    }
}
