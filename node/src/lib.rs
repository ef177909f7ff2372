//! The node: configuration and the wiring of engine, CQL server and cluster services.

pub mod cluster;
pub mod config;
pub mod coordinator;
pub mod dispatch;
pub mod hints;
pub mod identity;
pub mod joining;
pub mod logging;
pub mod membership;
pub mod messaging;
pub mod paxos;
pub mod run;
pub mod schema_sync;
pub mod status;
pub mod topology;
pub mod wire;
