//! The node's lifecycle as the probes see it, and the drain handshake between the admin
//! endpoint / signal handler and the node's main task.
//!
//! Everything the probes read is an atomic: a probe must answer in milliseconds even when
//! the request path is saturated (§2 #7, #9), so it never waits for a lock the request path
//! holds.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::watch;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum NodeState {
    /// Opening the engine, replaying the commit log.
    Starting = 0,
    /// Bootstrapping into an existing ring (gossip work).
    Joining = 1,
    Normal = 2,
    /// Readiness is off; CQL is being stopped, memtables flushed.
    Draining = 3,
    /// Drained: nothing is served, memtables are on disk; the process waits for SIGTERM.
    Drained = 4,
}

impl NodeState {
    fn from_u8(v: u8) -> NodeState {
        match v {
            0 => NodeState::Starting,
            1 => NodeState::Joining,
            2 => NodeState::Normal,
            3 => NodeState::Draining,
            _ => NodeState::Drained,
        }
    }

    /// Cassandra's `nodetool netstats` mode names, which scripts already grep for.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeState::Starting => "STARTING",
            NodeState::Joining => "JOINING",
            NodeState::Normal => "NORMAL",
            NodeState::Draining => "DRAINING",
            NodeState::Drained => "DRAINED",
        }
    }
}

/// Shared between the node's main task, the signal handler and the admin server.
pub struct Lifecycle {
    state: AtomicU8,
    cql_serving: AtomicBool,
    /// Milliseconds since `born` at the last tick of the main runtime's heartbeat task.
    heartbeat_ms: AtomicU64,
    born: Instant,
    drain_requested: watch::Sender<bool>,
    drained: watch::Sender<bool>,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Lifecycle {
            state: AtomicU8::new(NodeState::Starting as u8),
            cql_serving: AtomicBool::new(false),
            heartbeat_ms: AtomicU64::new(0),
            born: Instant::now(),
            drain_requested: watch::Sender::new(false),
            drained: watch::Sender::new(false),
        }
    }
}

impl Lifecycle {
    pub fn state(&self) -> NodeState {
        NodeState::from_u8(self.state.load(Ordering::Acquire))
    }

    /// Moves forward only: a late "Normal" from start-up must not undo a drain that a
    /// SIGTERM began in the meantime.
    pub fn advance(&self, to: NodeState) {
        self.state.fetch_max(to as u8, Ordering::AcqRel);
    }

    pub fn set_cql_serving(&self, on: bool) {
        self.cql_serving.store(on, Ordering::Release);
    }

    pub fn cql_serving(&self) -> bool {
        self.cql_serving.load(Ordering::Acquire)
    }

    /// Start-up is over (the startupProbe hands over to liveness/readiness).
    pub fn started(&self) -> bool {
        !matches!(self.state(), NodeState::Starting | NodeState::Joining)
    }

    /// Joined, serving CQL, not draining (§3 rule 7).
    pub fn ready(&self) -> bool {
        self.state() == NodeState::Normal && self.cql_serving()
    }

    /// Records that the main runtime is still scheduling tasks.
    pub fn heartbeat(&self) {
        self.heartbeat_ms
            .store(self.born.elapsed().as_millis() as u64, Ordering::Release);
    }

    /// Time since the main runtime last ticked.
    pub fn heartbeat_age(&self) -> Duration {
        let now = self.born.elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(self.heartbeat_ms.load(Ordering::Acquire)))
    }

    /// Asks the main task to drain. Readiness drops *now*, before anything else happens, so
    /// endpoints stop routing clients here first. Idempotent.
    pub fn request_drain(&self) {
        self.advance(NodeState::Draining);
        self.drain_requested.send_replace(true);
    }

    pub fn drain_requested(&self) -> bool {
        *self.drain_requested.borrow()
    }

    /// Resolves once a drain was requested.
    pub async fn wait_drain_requested(&self) {
        let mut rx = self.drain_requested.subscribe();
        let _ = rx.wait_for(|v| *v).await;
    }

    /// Called by the main task when memtables are flushed and nothing is served any more.
    pub fn mark_drained(&self) {
        self.advance(NodeState::Drained);
        self.drained.send_replace(true);
    }

    pub fn is_drained(&self) -> bool {
        *self.drained.borrow()
    }

    /// Resolves once the drain finished.
    pub async fn wait_drained(&self) {
        let mut rx = self.drained.subscribe();
        let _ = rx.wait_for(|v| *v).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn readiness_needs_normal_and_cql() {
        let l = Lifecycle::default();
        assert!(!l.started() && !l.ready());
        l.advance(NodeState::Normal);
        assert!(l.started() && !l.ready());
        l.set_cql_serving(true);
        assert!(l.ready());
        l.request_drain();
        assert!(!l.ready() && l.started());
        // A late start-up step cannot undo the drain.
        l.advance(NodeState::Normal);
        assert_eq!(l.state(), NodeState::Draining);
    }

    #[tokio::test]
    async fn drain_handshake_is_idempotent() {
        let l = Arc::new(Lifecycle::default());
        let waiter = {
            let l = l.clone();
            tokio::spawn(async move {
                l.wait_drain_requested().await;
                l.mark_drained();
            })
        };
        l.request_drain();
        l.request_drain();
        tokio::time::timeout(Duration::from_secs(5), l.wait_drained())
            .await
            .unwrap();
        waiter.await.unwrap();
        l.request_drain();
        l.wait_drained().await;
        assert_eq!(l.state(), NodeState::Drained);
    }
}
