//! Cluster membership and data placement: Cassandra's Murmur3 partitioner, the token ring
//! and replica placement. (Gossip and failure detection arrive with the cluster work.)

pub mod partitioner;
pub mod tokens;
