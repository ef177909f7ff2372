//! Choosing a node's vnode tokens.
//!
//! Random tokens (Cassandra's default before 4.0) leave ownership uneven by tens of percent
//! with few vnodes. [`allocate_tokens`] instead places a joining node's tokens so every node
//! ends up owning close to `1 / nodes` of the ring, in the spirit of Cassandra's
//! `allocate_tokens_for_local_replication_factor` but for primary ownership only.

use std::collections::{BTreeMap, BTreeSet};

use rand::Rng;

use crate::ring::{HostId, Ring};

/// Vnodes per node unless configured (Cassandra 4's default).
pub const DEFAULT_NUM_TOKENS: usize = 16;

/// `n` distinct random tokens for a node joining an empty ring (Cassandra's behaviour without
/// `allocate_tokens_for_local_replication_factor`). Sorted.
pub fn random_tokens(n: usize) -> Vec<i64> {
    let mut rng = rand::rng();
    let mut out = BTreeSet::new();
    while out.len() < n {
        let t: i64 = rng.random();
        if t != i64::MIN {
            out.insert(t);
        }
    }
    out.into_iter().collect()
}

/// `n` evenly spaced tokens starting at a random offset, for the first node of a cluster.
/// The offset keeps two independently bootstrapped clusters from sharing tokens. Sorted.
pub fn initial_tokens<R: Rng + ?Sized>(n: usize, rng: &mut R) -> Vec<i64> {
    let n = n.max(1);
    let step = (1u128 << 64) / n as u128;
    let offset: u64 = rng.random();
    let mut out: Vec<i64> = (0..n as u128)
        .map(|k| (offset as u128 + k * step) as u64 as i64)
        .map(|t| if t == i64::MIN { i64::MIN + 1 } else { t })
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// Tokens for a node joining `ring` with `n` vnodes, chosen so ownership stays even.
///
/// Greedy: each new token carves a slice of about `1 / ((hosts + 1) * n)` of the ring out of
/// the widest range of whichever host currently owns the most. The most loaded hosts thus give
/// up the most, and the joining node ends up with its fair share. On an empty ring this is
/// [`initial_tokens`]. Sorted.
pub fn allocate_tokens<R: Rng + ?Sized>(ring: &Ring, n: usize, rng: &mut R) -> Vec<i64> {
    let n = n.max(1);
    if ring.is_empty() {
        return initial_tokens(n, rng);
    }
    let toks = ring.tokens();
    // Ranges as (start, end) -> owner; `None` marks the joining node.
    let mut ranges: BTreeMap<i64, (i64, Option<HostId>)> = BTreeMap::new();
    let mut owned: BTreeMap<HostId, u128> = BTreeMap::new();
    for (i, &(_, owner)) in toks.iter().enumerate() {
        let r = ring.range_at(i);
        ranges.insert(r.end, (r.start, Some(owner)));
        *owned.entry(owner).or_default() += r.width();
    }
    let target = (1u128 << 64) / (owned.len() as u128 + 1);
    let mut got = 0u128;
    let mut taken: BTreeSet<i64> = toks.iter().map(|x| x.0).collect();
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let Some((&victim, _)) = owned
            .iter()
            .max_by_key(|(h, w)| (**w, std::cmp::Reverse(**h)))
        else {
            break;
        };
        let Some((&end, &(start, _))) = ranges
            .iter()
            .filter(|(_, (_, o))| *o == Some(victim))
            .max_by_key(|(e, (s, _))| {
                crate::ring::TokenRange {
                    start: *s,
                    end: **e,
                }
                .width()
            })
        else {
            break;
        };
        let width = crate::ring::TokenRange { start, end }.width();
        if width < 2 {
            // Nothing left to split; stop rather than loop forever on a degenerate ring.
            owned.remove(&victim);
            continue;
        }
        // What is still missing, spread over the tokens still to place, so a slice cut short
        // by a narrow range is made up by later ones.
        let slice = target.saturating_sub(got) / (n - out.len()) as u128;
        let take = slice.clamp(1, width - 1);
        // A little randomness (under 1/256 of the slice): two nodes that join against the
        // same view of the ring do not pick identical tokens.
        let take = take - rng.random_range(0..=take / 256);
        let take = take.max(1);
        let mut t = start.wrapping_add(take as u64 as i64);
        if t == i64::MIN || taken.contains(&t) {
            t = t.wrapping_add(1);
            if t == end || taken.contains(&t) {
                owned.remove(&victim);
                continue;
            }
        }
        let take = crate::ring::TokenRange { start, end: t }.width();
        ranges.insert(t, (start, None));
        ranges.insert(end, (t, Some(victim)));
        *owned.get_mut(&victim).expect("victim is owned") -= take;
        got += take;
        taken.insert(t);
        out.push(t);
    }
    out.sort_unstable();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::tests::{hid, info};
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn spread(ring: &Ring) -> f64 {
        let owns: Vec<f64> = ring
            .hosts()
            .map(|(h, _)| ring.primary_ownership(h))
            .collect();
        let max = owns.iter().cloned().fold(0.0, f64::max);
        let min = owns.iter().cloned().fold(1.0, f64::min);
        max / min
    }

    fn grow(n_tokens: usize, nodes: u8, seed: u64) -> Vec<f64> {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut ring = Ring::new();
        let mut spreads = Vec::new();
        for k in 1..=nodes {
            let t = allocate_tokens(&ring, n_tokens, &mut rng);
            assert_eq!(t.len(), n_tokens);
            ring.set_host(hid(k), info(k, "dc1", "r1"), &t).unwrap();
            let total: f64 = ring.hosts().map(|(h, _)| ring.primary_ownership(h)).sum();
            assert!((total - 1.0).abs() < 1e-9);
            spreads.push(spread(&ring));
        }
        spreads
    }

    #[test]
    fn first_node_is_evenly_spaced() {
        let mut rng = StdRng::seed_from_u64(7);
        let t = initial_tokens(16, &mut rng);
        assert_eq!(t.len(), 16);
        let mut ring = Ring::new();
        ring.set_host(hid(1), info(1, "dc1", "r1"), &t).unwrap();
        for r in ring.primary_ranges(&hid(1)) {
            assert!((r.fraction() - 1.0 / 16.0).abs() < 1e-12);
        }
        assert_ne!(t, initial_tokens(16, &mut rng));
    }

    #[test]
    fn ownership_stays_even_as_nodes_join() {
        for seed in 0..3 {
            let s = grow(16, 10, seed);
            for (k, ratio) in s.iter().enumerate() {
                assert!(*ratio < 1.1, "{} nodes: max/min ownership {ratio}", k + 1);
            }
            let s = grow(4, 10, seed);
            assert!(s.iter().all(|r| *r < 1.6), "{s:?}");
        }
    }
}
