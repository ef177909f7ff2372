//! Paxos ballots: time-based (version 1) UUIDs, as Cassandra's `UUIDGen` makes them.
//!
//! A ballot orders by its timestamp in µs, then by its node bits, so ballots from two
//! nodes never tie and a later ballot from any node is greater. A node's ballots strictly
//! increase, and a proposer that learns of a higher ballot starts above it.

use std::sync::atomic::{AtomicI64, Ordering};

/// 100-ns intervals between 1582-10-15 (the UUID epoch) and 1970-01-01.
const UUID_EPOCH_OFFSET: i64 = 0x01B2_1DD2_1381_4000;
/// The RFC 4122 variant bits (`10`) in the clock-sequence-and-node half.
const VARIANT: u64 = 0x8000_0000_0000_0000;
const VARIANT_MASK: u64 = 0xC000_0000_0000_0000;

/// One ballot. `node` is the UUID's clock-sequence-and-node half, variant bits included,
/// so that [`Ballot::to_uuid`] and [`Ballot::from_uuid`] round-trip exactly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ballot {
    pub micros: i64,
    pub node: u64,
}

impl Ballot {
    pub fn new(micros: i64, node: u64) -> Ballot {
        Ballot {
            micros,
            node: (node & !VARIANT_MASK) | VARIANT,
        }
    }

    /// The ballot as a version-1 UUID (the `timeuuid` of Cassandra's system.paxos).
    pub fn to_uuid(self) -> [u8; 16] {
        let t = (self.micros.saturating_mul(10)).saturating_add(UUID_EPOCH_OFFSET) as u64;
        let mut out = [0u8; 16];
        out[0..4].copy_from_slice(&(t as u32).to_be_bytes());
        out[4..6].copy_from_slice(&((t >> 32) as u16).to_be_bytes());
        out[6..8].copy_from_slice(&((((t >> 48) as u16) & 0x0FFF) | 0x1000).to_be_bytes());
        out[8..16].copy_from_slice(&self.node.to_be_bytes());
        out
    }

    /// The ballot a version-1 UUID holds; `None` for other versions or variants.
    pub fn from_uuid(b: &[u8; 16]) -> Option<Ballot> {
        let hi = u16::from_be_bytes([b[6], b[7]]);
        let node = u64::from_be_bytes(b[8..16].try_into().ok()?);
        if hi >> 12 != 1 || node & VARIANT_MASK != VARIANT {
            return None;
        }
        let t = u64::from(u32::from_be_bytes(b[0..4].try_into().ok()?))
            | u64::from(u16::from_be_bytes([b[4], b[5]])) << 32
            | u64::from(hi & 0x0FFF) << 48;
        let micros = (t as i64 - UUID_EPOCH_OFFSET).div_euclid(10);
        Some(Ballot { micros, node })
    }
}

/// Makes this node's ballots.
#[derive(Debug)]
pub struct BallotGen {
    last: AtomicI64,
    node: u64,
}

impl BallotGen {
    /// `node` should differ between nodes (derived from the host id): it breaks ties
    /// between ballots made in the same microsecond on two nodes.
    pub fn new(node: u64) -> BallotGen {
        BallotGen {
            last: AtomicI64::new(i64::MIN),
            node,
        }
    }

    /// A ballot at `now` µs, above every ballot this generator made and at least
    /// `min_micros` (one above the highest ballot the proposer has seen).
    pub fn next(&self, now: i64, min_micros: i64) -> Ballot {
        let mut last = self.last.load(Ordering::Relaxed);
        loop {
            let micros = now.max(min_micros).max(last.saturating_add(1));
            match self.last.compare_exchange_weak(
                last,
                micros,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ballot::new(micros, self.node),
                Err(actual) => last = actual,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_round_trip_and_version() {
        let b = Ballot::new(1_700_000_000_123_456, 0xDEAD_BEEF_0123_4567);
        let u = b.to_uuid();
        assert_eq!(u[6] >> 4, 1, "version 1");
        assert_eq!(u[8] >> 6, 0b10, "RFC 4122 variant");
        assert_eq!(Ballot::from_uuid(&u), Some(b));
        let parsed = uuid::Uuid::from_bytes(u);
        let (secs, nanos) = parsed.get_timestamp().expect("v1 timestamp").to_unix();
        assert_eq!(secs as i64 * 1_000_000 + i64::from(nanos) / 1000, b.micros);
    }

    #[test]
    fn order_is_time_then_node() {
        let a = Ballot::new(10, 1);
        let b = Ballot::new(10, 2);
        let c = Ballot::new(11, 0);
        assert!(a < b && b < c);
    }

    #[test]
    fn generator_is_strictly_increasing_and_above_minimum() {
        let g = BallotGen::new(7);
        let a = g.next(100, i64::MIN);
        let b = g.next(100, i64::MIN);
        let c = g.next(50, i64::MIN);
        assert!(a < b && b < c);
        let d = g.next(50, 1_000);
        assert_eq!(d.micros, 1_000);
    }
}
