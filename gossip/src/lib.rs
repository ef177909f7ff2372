//! Cluster membership and data placement, as a pure core with no I/O: Cassandra's Murmur3
//! partitioner, the token ring and replica placement, token allocation, the phi-accrual
//! failure detector, the gossip state machine and its wire formats. Time, randomness and
//! transport are passed in, so the node crate owns sockets and clocks and tests can
//! simulate whole clusters deterministically.

pub mod codec;
pub mod failure_detector;
pub mod gossiper;
pub mod internode;
pub mod message;
pub mod partitioner;
pub mod replication;
pub mod ring;
pub mod state;
pub mod tokens;
