//! Schema propagation between nodes (`docs/architecture.md`, "Schema propagation").
//!
//! - **Push after local DDL.** The executor's announcer hook sends the whole schema
//!   (`SCHEMA_PUSH`) to every live peer and the DDL response waits, at most
//!   [`SchemaSyncConfig::push_timeout`], for their acknowledgements: a client that got its
//!   answer from node A can use the table through node B at once.
//! - **Pull on disagreement.** Gossip carries every node's schema version. When a live
//!   peer's version has differed from ours for [`SchemaSyncConfig::settle`], we pull its
//!   schema (`SCHEMA_PULL`), merge it, and push ours back if it still differs; the peer does
//!   the same. This is what brings a node that was down during a DDL up to date, and what
//!   makes two concurrent DDLs on two nodes converge.
//!
//! The merge itself is `Executor::merge_remote_schema` (commutative, so pushes and pulls may
//! cross in any order). Payloads are in `docs/formats/internode.md`.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use shoal_cql::executor::Executor;
use shoal_cql::executor::schema_sync::SchemaAnnouncer;
use shoal_gossip::internode::{Frame, MessageType, flags};
use tokio::sync::watch;
use tracing::{debug, info, warn};
use uuid::Uuid;

use crate::cluster::GossipService;
use crate::messaging::{HandlerFuture, Messaging};

/// A handler for one inbound message type (same shape as the node's dispatcher's).
pub type Handler = Arc<dyn Fn(SocketAddr, Frame) -> HandlerFuture + Send + Sync>;

/// One peer as schema sync sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchemaPeer {
    pub internode: SocketAddr,
    pub alive: bool,
    /// From gossip; `None` until the peer published it.
    pub schema_version: Option<Uuid>,
}

/// Who the peers are (gossip in a running node, a fixed list in tests).
pub trait SchemaPeers: Send + Sync {
    fn schema_peers(&self) -> Vec<SchemaPeer>;
}

impl SchemaPeers for GossipService {
    fn schema_peers(&self) -> Vec<SchemaPeer> {
        self.peers()
            .into_iter()
            .filter_map(|p| {
                Some(SchemaPeer {
                    internode: p.internode?,
                    alive: p.alive,
                    schema_version: p.schema_version.and_then(|v| v.parse().ok()),
                })
            })
            .collect()
    }
}

/// Timing.
#[derive(Clone, Debug)]
pub struct SchemaSyncConfig {
    /// Longest a DDL response waits for live peers to acknowledge the push.
    pub push_timeout: Duration,
    /// How long a peer's version must differ before we pull: pushes in flight usually make
    /// it agree sooner, and gossip needs a round to show the new version.
    pub settle: Duration,
    /// How often versions are compared.
    pub check_interval: Duration,
    /// Per pull request.
    pub pull_timeout: Duration,
}

impl Default for SchemaSyncConfig {
    fn default() -> Self {
        SchemaSyncConfig {
            push_timeout: Duration::from_secs(5),
            settle: Duration::from_secs(1),
            check_interval: Duration::from_millis(500),
            pull_timeout: Duration::from_secs(10),
        }
    }
}

/// Failures answering a peer; sent back as the FAILURE payload.
#[derive(Debug, thiserror::Error)]
enum SyncError {
    #[error("merging the schema failed: {0}")]
    Merge(String),
    #[error("the merge task did not finish: {0}")]
    Task(String),
}

fn failure(msg_type: MessageType, e: SyncError) -> Frame {
    Frame {
        msg_type,
        flags: flags::FAILURE,
        request_id: 0,
        payload: e.to_string().into_bytes(),
    }
}

/// Merges on the blocking pool: it writes the schema file and creates engine tables.
async fn merge(executor: &Arc<Executor>, bytes: Vec<u8>) -> Result<bool, SyncError> {
    let ex = executor.clone();
    tokio::task::spawn_blocking(move || ex.merge_remote_schema(&bytes))
        .await
        .map_err(|e| SyncError::Task(e.to_string()))?
        .map_err(|e| SyncError::Merge(e.to_string()))
}

/// Serves SCHEMA_PUSH (merge, answer with our version after it) and SCHEMA_PULL (answer with
/// our schema). Needs only the executor, so it can be registered before messaging starts.
pub fn handler(executor: Arc<Executor>) -> Handler {
    Arc::new(move |from: SocketAddr, frame: Frame| -> HandlerFuture {
        let executor = executor.clone();
        Box::pin(async move {
            match frame.msg_type {
                MessageType::SchemaPush => Some(match merge(&executor, frame.payload).await {
                    Ok(changed) => {
                        if changed {
                            info!(%from, "merged a schema pushed by a peer");
                        }
                        Frame {
                            msg_type: MessageType::SchemaPush,
                            flags: 0,
                            request_id: 0,
                            payload: executor.schema().version.as_bytes().to_vec(),
                        }
                    }
                    Err(e) => {
                        warn!(%from, error = %e, "schema push refused");
                        failure(MessageType::SchemaPush, e)
                    }
                }),
                MessageType::SchemaPullRequest => Some(Frame {
                    msg_type: MessageType::SchemaPullResponse,
                    flags: 0,
                    request_id: 0,
                    payload: executor.user_schema_bytes(),
                }),
                _ => None,
            }
        })
    })
}

/// The node's schema sync: announcer for local DDL and the disagreement watcher.
pub struct SchemaSync {
    executor: Arc<Executor>,
    messaging: Messaging,
    peers: Arc<dyn SchemaPeers>,
    config: SchemaSyncConfig,
    /// Since when each peer's gossiped version has differed from ours.
    differing: Mutex<HashMap<SocketAddr, Instant>>,
}

impl SchemaSync {
    pub fn new(
        executor: Arc<Executor>,
        messaging: Messaging,
        peers: Arc<dyn SchemaPeers>,
        config: SchemaSyncConfig,
    ) -> Arc<SchemaSync> {
        Arc::new(SchemaSync {
            executor,
            messaging,
            peers,
            config,
            differing: Mutex::new(HashMap::new()),
        })
    }

    fn live_peers(&self) -> Vec<SchemaPeer> {
        self.peers
            .schema_peers()
            .into_iter()
            .filter(|p| p.alive && p.internode != self.messaging.local_addr())
            .collect()
    }

    /// Pushes our schema to every live peer and waits (at most the push timeout) for all
    /// to acknowledge. Returns the peers that acknowledged with their version.
    pub async fn push_all(&self) -> Vec<(SocketAddr, Uuid)> {
        let bytes = self.executor.user_schema_bytes();
        let pushes = self.live_peers().into_iter().map(|p| {
            let (m, bytes, timeout) = (
                self.messaging.clone(),
                bytes.clone(),
                self.config.push_timeout,
            );
            async move {
                let r = m
                    .request(p.internode, MessageType::SchemaPush, bytes, timeout)
                    .await;
                (p.internode, r)
            }
        });
        let mut acked = Vec::new();
        for (peer, r) in futures_join_all(pushes).await {
            match r {
                Ok(f) => match Uuid::from_slice(&f.payload) {
                    Ok(v) => acked.push((peer, v)),
                    Err(_) => warn!(%peer, "schema push answered with a malformed version"),
                },
                Err(e) => warn!(%peer, error = %e, "schema push not acknowledged"),
            }
        }
        acked
    }

    /// Pulls a peer's schema and merges it; pushes ours back when the peer lacks part of
    /// it. Returns whether our schema changed.
    pub async fn pull_from(&self, peer: SocketAddr) -> bool {
        let r = self
            .messaging
            .request(
                peer,
                MessageType::SchemaPullRequest,
                Vec::new(),
                self.config.pull_timeout,
            )
            .await;
        let bytes = match r {
            Ok(f) => f.payload,
            Err(e) => {
                debug!(%peer, error = %e, "schema pull failed");
                return false;
            }
        };
        let theirs = shoal_cql::schema::persist::decode_state(&bytes)
            .map(|s| shoal_cql::schema::persist::schema_digest(s.materialize().iter()));
        let changed = match merge(&self.executor, bytes).await {
            Ok(c) => c,
            Err(e) => {
                warn!(%peer, error = %e, "merging a pulled schema failed");
                return false;
            }
        };
        if changed {
            info!(%peer, "merged the schema of a peer whose version differed");
        }
        if theirs.ok() != Some(self.executor.schema().version) {
            // The peer lacks something we have: it would pull it too, but only after its
            // own settle delay.
            let bytes = self.executor.user_schema_bytes();
            if let Err(e) = self
                .messaging
                .request(
                    peer,
                    MessageType::SchemaPush,
                    bytes,
                    self.config.push_timeout,
                )
                .await
            {
                debug!(%peer, error = %e, "pushing our schema back failed");
            }
        }
        changed
    }

    /// One comparison round: pulls from every live peer whose version has differed from
    /// ours for longer than the settle time.
    pub async fn check_once(&self) {
        let ours = self.executor.schema().version;
        let now = Instant::now();
        let mut due = Vec::new();
        {
            let mut differing = self.differing.lock().expect("differing lock");
            let peers = self.live_peers();
            differing.retain(|a, _| peers.iter().any(|p| p.internode == *a));
            for p in peers {
                match p.schema_version {
                    Some(v) if v != ours => {
                        let since = *differing.entry(p.internode).or_insert(now);
                        if now.duration_since(since) >= self.config.settle {
                            due.push(p.internode);
                            // Wait another settle period before pulling from it again.
                            differing.insert(p.internode, now);
                        }
                    }
                    _ => {
                        differing.remove(&p.internode);
                    }
                }
            }
        }
        for peer in due {
            self.pull_from(peer).await;
        }
    }

    /// Runs [`SchemaSync::check_once`] every check interval until `stop` turns true.
    pub fn spawn_watcher(self: &Arc<Self>, mut stop: watch::Receiver<bool>) {
        let this = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(this.config.check_interval);
            loop {
                // `changed()` rather than `wait_for`: its output holds no lock guard, so the
                // task stays Send across the check.
                tokio::select! {
                    _ = tick.tick() => {}
                    r = stop.changed() => if r.is_err() || *stop.borrow() { return },
                }
                this.check_once().await;
            }
        });
    }
}

/// The executor's announcer. Weak, so the executor (which holds it) and the sync (which
/// holds the executor) do not keep each other alive.
struct Announcer(Weak<SchemaSync>);

impl SchemaAnnouncer for Announcer {
    fn announce(&self, version: Uuid) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let sync = self.0.upgrade();
        Box::pin(async move {
            let Some(sync) = sync else { return };
            let acked = sync.push_all().await;
            let differing = acked.iter().filter(|(_, v)| *v != version).count();
            debug!(%version, acked = acked.len(), differing, "schema pushed");
        })
    }
}

/// Awaits every future (a few peers: no need for a dependency).
async fn futures_join_all<F: Future + Send + 'static>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        if let Ok(v) = h.await {
            out.push(v);
        }
    }
    out
}

/// Wires schema sync into a node: registers the inbound handlers through `register` (the
/// node's dispatcher), makes local DDL push to live peers and wait for them, and starts the
/// watcher that pulls from peers whose gossiped version differs.
pub fn install(
    executor: &Arc<Executor>,
    messaging: Messaging,
    peers: Arc<dyn SchemaPeers>,
    config: SchemaSyncConfig,
    register: impl Fn(MessageType, Handler),
    stop: watch::Receiver<bool>,
) -> Arc<SchemaSync> {
    let h = handler(executor.clone());
    register(MessageType::SchemaPush, h.clone());
    register(MessageType::SchemaPullRequest, h);
    let sync = SchemaSync::new(executor.clone(), messaging, peers, config);
    executor.set_schema_announcer(Arc::new(Announcer(Arc::downgrade(&sync))));
    sync.spawn_watcher(stop);
    sync
}

#[cfg(test)]
mod tests;
