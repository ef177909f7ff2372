//! The token ring: which host owns which tokens, and where each host lives.
//!
//! A host owns the ranges `(previous ring token, its token]`; the owner of a key token `t`
//! is the owner of the first ring token `>= t`, wrapping to the smallest. This is what the
//! python driver (`bisect_left`) and the scylla driver compute, so it must match exactly.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;

/// A node's identity. It survives restarts and address changes; addresses do not.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct HostId(pub [u8; 16]);

impl HostId {
    /// The id as 16 bytes (a UUID in network order).
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Display for HostId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        for (i, byte) in b.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for HostId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HostId({self})")
    }
}

impl From<[u8; 16]> for HostId {
    fn from(b: [u8; 16]) -> Self {
        HostId(b)
    }
}

/// Where a host is and how to reach it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostInfo {
    /// Internode (gossip) address.
    pub addr: SocketAddr,
    pub dc: String,
    pub rack: String,
}

/// A half-open token range `(start, end]` on the ring. `start == end` is the whole ring,
/// which is what a single token owns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TokenRange {
    pub start: i64,
    pub end: i64,
}

/// Number of distinct tokens on the ring, as a float for ownership fractions.
pub const RING_SIZE: f64 = 18_446_744_073_709_551_616.0;

impl TokenRange {
    /// Number of tokens in the range; `2^64` for the whole ring.
    pub fn width(&self) -> u128 {
        let w = (self.end as i128 - self.start as i128).rem_euclid(1i128 << 64) as u128;
        if w == 0 { 1u128 << 64 } else { w }
    }

    /// Whether `t` falls in `(start, end]`, honouring wrap-around.
    pub fn contains(&self, t: i64) -> bool {
        if self.start == self.end {
            return true;
        }
        if self.start < self.end {
            t > self.start && t <= self.end
        } else {
            t > self.start || t <= self.end
        }
    }

    /// Fraction of the ring covered.
    pub fn fraction(&self) -> f64 {
        self.width() as f64 / RING_SIZE
    }
}

/// Errors changing the ring.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RingError {
    #[error("token {token} is already owned by {owner}")]
    TokenTaken { token: i64, owner: HostId },
    #[error("host {0} has no tokens")]
    NoTokens(HostId),
}

/// Tokens and hosts. Cheap to clone for small clusters; replica placement is cached by
/// [`crate::replication::TokenMetadata`], not here.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ring {
    hosts: BTreeMap<HostId, HostInfo>,
    /// Sorted by token; a token appears once.
    tokens: Vec<(i64, HostId)>,
}

impl Ring {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a host with its tokens, or replaces the tokens and info of a known host.
    /// Fails, leaving the ring untouched, if another host owns one of the tokens.
    pub fn set_host(
        &mut self,
        id: HostId,
        info: HostInfo,
        tokens: &[i64],
    ) -> Result<(), RingError> {
        if tokens.is_empty() {
            return Err(RingError::NoTokens(id));
        }
        for &t in tokens {
            if let Ok(i) = self.tokens.binary_search_by_key(&t, |&(tok, _)| tok) {
                let owner = self.tokens[i].1;
                if owner != id {
                    return Err(RingError::TokenTaken { token: t, owner });
                }
            }
        }
        self.tokens.retain(|&(_, h)| h != id);
        self.tokens.extend(tokens.iter().map(|&t| (t, id)));
        self.tokens.sort_unstable();
        self.tokens.dedup_by_key(|e| e.0);
        self.hosts.insert(id, info);
        Ok(())
    }

    /// Removes a host and its tokens; returns its info if it was known.
    pub fn remove_host(&mut self, id: &HostId) -> Option<HostInfo> {
        self.tokens.retain(|(_, h)| h != id);
        self.hosts.remove(id)
    }

    /// Updates a host's address (same identity, new IP). Returns false if unknown.
    pub fn set_address(&mut self, id: &HostId, addr: SocketAddr) -> bool {
        match self.hosts.get_mut(id) {
            Some(h) => {
                h.addr = addr;
                true
            }
            None => false,
        }
    }

    pub fn host(&self, id: &HostId) -> Option<&HostInfo> {
        self.hosts.get(id)
    }

    pub fn hosts(&self) -> impl Iterator<Item = (&HostId, &HostInfo)> {
        self.hosts.iter()
    }

    /// `(token, owner)` sorted by token.
    pub fn tokens(&self) -> &[(i64, HostId)] {
        &self.tokens
    }

    /// A host's tokens, sorted.
    pub fn tokens_of(&self, id: &HostId) -> Vec<i64> {
        self.tokens
            .iter()
            .filter(|(_, h)| h == id)
            .map(|&(t, _)| t)
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Index into [`Ring::tokens`] of the first ring token `>= t`, wrapping to 0.
    /// Panics only if the ring is empty, which callers check first.
    pub fn primary_index(&self, t: i64) -> usize {
        let i = self.tokens.partition_point(|&(tok, _)| tok < t);
        if i == self.tokens.len() { 0 } else { i }
    }

    /// The primary replica of key token `t`.
    pub fn primary_owner(&self, t: i64) -> Option<HostId> {
        if self.tokens.is_empty() {
            return None;
        }
        Some(self.tokens[self.primary_index(t)].1)
    }

    /// The range ending at ring token index `i`.
    pub fn range_at(&self, i: usize) -> TokenRange {
        let n = self.tokens.len();
        let prev = self.tokens[(i + n - 1) % n].0;
        TokenRange {
            start: prev,
            end: self.tokens[i].0,
        }
    }

    /// Ranges a host owns as primary replica, in ring order.
    pub fn primary_ranges(&self, id: &HostId) -> Vec<TokenRange> {
        (0..self.tokens.len())
            .filter(|&i| self.tokens[i].1 == *id)
            .map(|i| self.range_at(i))
            .collect()
    }

    /// Fraction of the ring a host owns as primary replica.
    pub fn primary_ownership(&self, id: &HostId) -> f64 {
        self.primary_ranges(id).iter().map(|r| r.fraction()).sum()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn hid(n: u8) -> HostId {
        let mut b = [0u8; 16];
        b[15] = n;
        HostId(b)
    }

    pub(crate) fn info(n: u8, dc: &str, rack: &str) -> HostInfo {
        HostInfo {
            addr: SocketAddr::from(([10, 0, 0, n], 7000)),
            dc: dc.into(),
            rack: rack.into(),
        }
    }

    #[test]
    fn owner_is_first_token_at_or_after_wrapping() {
        let mut r = Ring::new();
        r.set_host(hid(1), info(1, "dc1", "r1"), &[-100, 100])
            .unwrap();
        r.set_host(hid(2), info(2, "dc1", "r1"), &[0]).unwrap();
        assert_eq!(r.primary_owner(-100), Some(hid(1)));
        assert_eq!(r.primary_owner(-99), Some(hid(2)));
        assert_eq!(r.primary_owner(0), Some(hid(2)));
        assert_eq!(r.primary_owner(1), Some(hid(1)));
        assert_eq!(r.primary_owner(101), Some(hid(1)));
        assert_eq!(r.primary_owner(i64::MIN), Some(hid(1)));
        assert_eq!(r.primary_owner(i64::MAX), Some(hid(1)));
    }

    #[test]
    fn ranges_cover_the_ring_once() {
        let mut r = Ring::new();
        r.set_host(hid(1), info(1, "dc1", "r1"), &[-5, 50]).unwrap();
        r.set_host(hid(2), info(2, "dc1", "r1"), &[7]).unwrap();
        let total: f64 = [hid(1), hid(2)]
            .iter()
            .map(|h| r.primary_ownership(h))
            .sum();
        assert!((total - 1.0).abs() < 1e-12);
        let rs = r.primary_ranges(&hid(1));
        assert_eq!(
            rs,
            vec![
                TokenRange { start: 50, end: -5 },
                TokenRange { start: 7, end: 50 }
            ]
        );
        assert!(rs[0].contains(i64::MAX) && rs[0].contains(-5) && !rs[0].contains(-4));
    }

    #[test]
    fn single_token_owns_everything() {
        let mut r = Ring::new();
        r.set_host(hid(1), info(1, "dc1", "r1"), &[42]).unwrap();
        assert_eq!(r.primary_ownership(&hid(1)), 1.0);
        assert!(r.range_at(0).contains(-7));
    }

    #[test]
    fn token_collision_is_refused_and_replacement_works() {
        let mut r = Ring::new();
        r.set_host(hid(1), info(1, "dc1", "r1"), &[1, 2]).unwrap();
        assert_eq!(
            r.set_host(hid(2), info(2, "dc1", "r1"), &[3, 2]),
            Err(RingError::TokenTaken {
                token: 2,
                owner: hid(1)
            })
        );
        assert!(r.host(&hid(2)).is_none());
        r.set_host(hid(1), info(1, "dc1", "r1"), &[5]).unwrap();
        assert_eq!(r.tokens(), &[(5, hid(1))]);
        assert!(r.set_address(&hid(1), "10.9.9.9:7000".parse().unwrap()));
        assert_eq!(r.host(&hid(1)).unwrap().addr.port(), 7000);
        r.remove_host(&hid(1));
        assert!(r.is_empty());
        assert_eq!(
            HostId([0xab; 16]).to_string(),
            "abababab-abab-abab-abab-abababababab"
        );
    }
}
