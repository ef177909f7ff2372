//! Choosing a node's vnode tokens.

use rand::Rng;

/// `n` distinct random tokens for a node joining an empty ring (Cassandra's behaviour without
/// `allocate_tokens_for_local_replication_factor`). Sorted.
pub fn random_tokens(n: usize) -> Vec<i64> {
    let mut rng = rand::rng();
    let mut out = std::collections::BTreeSet::new();
    while out.len() < n {
        let t: i64 = rng.random();
        if t != i64::MIN {
            out.insert(t);
        }
    }
    out.into_iter().collect()
}
