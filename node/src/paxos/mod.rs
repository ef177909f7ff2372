//! Lightweight transactions across replicas: Cassandra 4.0's Paxos v1, linearizable per
//! partition.
//!
//! - [`ballot`]: time-UUID ballots and their generator;
//! - [`state`]: the acceptor's state and transitions (pure);
//! - [`proposer`]: the coordinator's rounds against a [`proposer::Transport`] (pure logic,
//!   tested in-process over a simulated lossy network);
//! - [`codec`]: the internode payloads (`docs/formats/internode.md`);
//! - [`store`]: the acceptor on this node, its state in `system.paxos`;
//! - [`service`]: the executor's `Cas`, the real transport and the inbound handler.

pub mod ballot;
pub mod codec;
pub mod proposer;
pub mod service;
pub mod state;
pub mod store;

#[cfg(test)]
mod sim;

pub use service::{inbound, install};
