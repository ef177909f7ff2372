//! Kubernetes integration: the pod's identity, the rules that let a plain StatefulSet with
//! `podManagementPolicy: Parallel` form and grow a cluster safely (who may found it, who may
//! join when), seed discovery through a headless Service, and the admin HTTP endpoint with
//! probes, drain and Prometheus metrics.
//!
//! Nothing here knows about the storage engine or CQL: the node crate feeds numbers in
//! ([`metrics::Metrics`]) and reacts to requests ([`lifecycle::Lifecycle`]).

pub mod admin;
pub mod discovery;
pub mod founding;
pub mod http;
pub mod identity;
pub mod join;
pub mod lifecycle;
pub mod metrics;

pub use identity::{PodEnv, PodIdentity, parse_pod_hostname};
