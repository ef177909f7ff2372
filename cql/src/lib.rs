//! Shoal's CQL layer: the native protocol ([`protocol`]), CQL types and values ([`types`]),
//! the language ([`parser`]), the schema ([`schema`]), single-node execution ([`executor`])
//! and the TCP server ([`server`]).

pub mod auth;
pub mod cluster_view;
pub mod coordinator;
pub mod error;
pub mod executor;
pub mod parser;
pub mod paxos;
pub mod protocol;
pub mod schema;
pub mod server;
pub mod types;

pub use error::{Consistency, CqlError, CqlResult};
