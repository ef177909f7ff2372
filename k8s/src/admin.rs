//! The admin HTTP endpoint: probes, drain, metrics, status.
//!
//! It runs on its own OS thread with its own single-threaded runtime, so a CQL load that
//! saturates the node's worker threads cannot delay a probe (§2 #9: probes timing out under
//! load got pods restarted). It reads only atomics and two `watch` cells that the request
//! path never touches.
//!
//! | path | meaning |
//! |---|---|
//! | `/livez` | 200 while the process and its request runtime are responsive; never checks peers |
//! | `/startupz` | 503 while replaying the commit log / joining, then 200 |
//! | `/readyz` | 200 only when joined, serving CQL and not draining |
//! | `/drain` | GET or POST (preStop `httpGet` is a GET); drains, returns when done; idempotent |
//! | `/metrics` | Prometheus text |
//! | `/status` | JSON for humans and scripts |
//! | `/ring` | JSON: every cluster member as gossip sees it (`shoal status`); `?keyspace=ks` for effective ownership |

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::watch;
use tracing::{error, info};

use crate::http::{self, Request, Response};
use crate::lifecycle::Lifecycle;
use crate::metrics::Metrics;

/// Paths, shared with the manifests' probes (checked by tests/tests/k8s_manifests.rs).
pub const LIVEZ: &str = "/livez";
pub const STARTUPZ: &str = "/startupz";
pub const READYZ: &str = "/readyz";
pub const DRAIN: &str = "/drain";
pub const METRICS: &str = "/metrics";
pub const STATUS: &str = "/status";
pub const RING: &str = "/ring";

/// Builds the `/ring` JSON for an optional keyspace; `Err` is a message for a 400 answer.
/// Set by the node once gossip runs (this crate knows nothing of gossip).
pub type RingFn = Arc<dyn Fn(Option<&str>) -> Result<String, String> + Send + Sync>;

/// `/livez` fails when the request runtime has not ticked for this long: a wedged runtime is
/// what liveness exists for, and the bound is far above any scheduling delay under load.
pub const LIVENESS_STALL: Duration = Duration::from_secs(30);

/// Static facts for `/status`, known once the identity is loaded.
#[derive(Clone, Debug, Default)]
pub struct NodeFacts {
    pub host_id: String,
    pub cluster_name: String,
    pub tokens: usize,
    pub dc: String,
    pub rack: String,
    pub listen_address: String,
    pub broadcast_address: String,
    pub rpc_address: String,
    pub native_port: u16,
    pub storage_port: u16,
    pub hostname: String,
    pub ordinal: Option<u32>,
    pub namespace: Option<String>,
}

#[derive(Default)]
pub struct AdminState {
    pub lifecycle: Arc<Lifecycle>,
    pub metrics: Arc<Metrics>,
    pub facts: OnceLock<NodeFacts>,
    /// Addresses discovery currently offers as seeds (shown in `/status`).
    pub discovered: OnceLock<watch::Receiver<Vec<SocketAddr>>>,
    /// The `/ring` source; `/ring` answers 503 until it is set.
    pub ring: OnceLock<RingFn>,
}

/// Answers one request. Public so tests can drive it without sockets.
pub async fn route(state: &AdminState, req: &Request) -> Response {
    let method = req.method.as_str();
    let read_only = matches!(method, "GET" | "HEAD");
    let l = &state.lifecycle;
    match req.path.as_str() {
        DRAIN if read_only || method == "POST" => {
            if !l.is_drained() {
                l.request_drain();
                l.wait_drained().await;
            }
            Response::text(200, "drained\n")
        }
        _ if !read_only => Response::text(405, "method not allowed\n"),
        LIVEZ => {
            let age = l.heartbeat_age();
            if age < LIVENESS_STALL {
                Response::text(200, "ok\n")
            } else {
                Response::text(
                    503,
                    format!("request runtime stalled for {} s\n", age.as_secs()),
                )
            }
        }
        STARTUPZ => probe(l.started(), l),
        READYZ => probe(l.ready(), l),
        METRICS => Response {
            status: 200,
            content_type: "text/plain; version=0.0.4; charset=utf-8",
            body: state.metrics.render(l),
        },
        STATUS => Response::json(200, status_json(state).to_string() + "\n"),
        RING => match state.ring.get() {
            None => Response::text(503, "ring not available yet\n"),
            Some(ring) => {
                let keyspace = req
                    .query
                    .as_deref()
                    .and_then(|q| query_param(q, "keyspace"));
                match ring(keyspace.as_deref()) {
                    Ok(json) => Response::json(200, json + "\n"),
                    Err(e) => {
                        Response::json(400, serde_json::json!({ "error": e }).to_string() + "\n")
                    }
                }
            }
        },
        _ => Response::text(404, "not found\n"),
    }
}

/// The value of `name` in a query string (`a=1&keyspace=ks`), percent-decoded.
pub fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == name && !v.is_empty()).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match b[i] {
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn probe(ok: bool, l: &Lifecycle) -> Response {
    let state = l.state().as_str();
    let cql = if l.cql_serving() {
        "cql up"
    } else {
        "cql down"
    };
    Response::text(if ok { 200 } else { 503 }, format!("{state}, {cql}\n"))
}

fn status_json(state: &AdminState) -> serde_json::Value {
    let l = &state.lifecycle;
    let f = state.facts.get().cloned().unwrap_or_default();
    let seeds: Vec<String> = state
        .discovered
        .get()
        .map(|rx| rx.borrow().iter().map(|a| a.to_string()).collect())
        .unwrap_or_default();
    serde_json::json!({
        "state": l.state().as_str(),
        "started": l.started(),
        "ready": l.ready(),
        "cql_serving": l.cql_serving(),
        "host_id": f.host_id,
        "cluster_name": f.cluster_name,
        "tokens": f.tokens,
        "dc": f.dc,
        "rack": f.rack,
        "addresses": {
            "listen": f.listen_address,
            "broadcast": f.broadcast_address,
            "rpc": f.rpc_address,
            "native_port": f.native_port,
            "storage_port": f.storage_port,
        },
        "pod": {
            "hostname": f.hostname,
            "ordinal": f.ordinal,
            "namespace": f.namespace,
        },
        "discovered_seeds": seeds,
        "uid": current_uid(),
    })
}

/// The process's real uid, for checking that the image runs unprivileged.
fn current_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Binds `addr` now (so a port conflict fails start-up) and serves on a dedicated thread.
pub fn spawn(addr: SocketAddr, state: Arc<AdminState>) -> std::io::Result<SocketAddr> {
    let std_listener = std::net::TcpListener::bind(addr)?;
    std_listener.set_nonblocking(true)?;
    let bound = std_listener.local_addr()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("shoal-admin".into())
        .spawn(move || {
            runtime.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(std_listener) {
                    Ok(l) => l,
                    Err(e) => {
                        error!(error = %e, "admin listener unusable");
                        return;
                    }
                };
                info!(address = %bound, "admin HTTP (probes, /drain, /metrics) listening");
                let handler: http::Handler = Arc::new(move |req: Request| {
                    let state = state.clone();
                    Box::pin(async move { route(&state, &req).await }) as http::BoxResponse
                });
                http::serve(listener, handler).await;
            })
        })?;
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::NodeState;

    fn get(path: &str) -> Request {
        Request {
            method: "GET".into(),
            path: path.into(),
            query: None,
        }
    }

    #[tokio::test]
    async fn probe_semantics_follow_the_lifecycle() {
        let s = AdminState::default();
        s.lifecycle.heartbeat();
        assert_eq!(route(&s, &get(LIVEZ)).await.status, 200);
        assert_eq!(route(&s, &get(STARTUPZ)).await.status, 503);
        assert_eq!(route(&s, &get(READYZ)).await.status, 503);
        s.lifecycle.advance(NodeState::Normal);
        assert_eq!(route(&s, &get(STARTUPZ)).await.status, 200);
        assert_eq!(
            route(&s, &get(READYZ)).await.status,
            503,
            "CQL not bound yet"
        );
        s.lifecycle.set_cql_serving(true);
        assert_eq!(route(&s, &get(READYZ)).await.status, 200);
        assert_eq!(route(&s, &get("/nope")).await.status, 404);
        let post = Request {
            method: "POST".into(),
            ..get(READYZ)
        };
        assert_eq!(route(&s, &post).await.status, 405);
        let m = route(&s, &get(METRICS)).await;
        assert!(m.body.contains("shoal_node_ready 1"));
        let st: serde_json::Value =
            serde_json::from_str(&route(&s, &get(STATUS)).await.body).unwrap();
        assert_eq!(st["state"], "NORMAL");
    }

    #[tokio::test]
    async fn ring_answers_from_the_node_callback() {
        let s = AdminState::default();
        assert_eq!(route(&s, &get(RING)).await.status, 503);
        let ring: RingFn = Arc::new(|ks: Option<&str>| match ks {
            None => Ok("{\"nodes\":[]}".to_string()),
            Some("ks 1") => Ok(format!("{{\"keyspace\":\"{}\"}}", ks.unwrap())),
            Some(other) => Err(format!("keyspace {other} does not exist")),
        });
        let _ = s.ring.set(ring);
        let r = route(&s, &get(RING)).await;
        assert_eq!((r.status, r.body.as_str()), (200, "{\"nodes\":[]}\n"));
        let with = |q: &str| Request {
            query: Some(q.to_string()),
            ..get(RING)
        };
        let r = route(&s, &with("keyspace=ks%201")).await;
        assert_eq!(r.status, 200);
        assert!(r.body.contains("\"ks 1\""), "{}", r.body);
        let r = route(&s, &with("x=1&keyspace=nope")).await;
        assert_eq!(r.status, 400);
        assert!(r.body.contains("nope does not exist"), "{}", r.body);
        assert_eq!(query_param("keyspace=&a=b", "keyspace"), None);
        assert_eq!(query_param("a=%4", "a").as_deref(), Some("%4"));
    }

    #[tokio::test]
    async fn drain_waits_for_the_node_and_is_idempotent() {
        let s = Arc::new(AdminState::default());
        s.lifecycle.advance(NodeState::Normal);
        s.lifecycle.set_cql_serving(true);
        let node = {
            let l = s.lifecycle.clone();
            tokio::spawn(async move {
                l.wait_drain_requested().await;
                l.set_cql_serving(false);
                tokio::time::sleep(Duration::from_millis(50)).await;
                l.mark_drained();
            })
        };
        let drain_get = get(DRAIN);
        let (a, b) = tokio::join!(route(&s, &drain_get), async {
            let post = Request {
                method: "POST".into(),
                ..get(DRAIN)
            };
            route(&s, &post).await
        });
        assert_eq!((a.status, b.status), (200, 200));
        node.await.unwrap();
        assert_eq!(route(&s, &get(READYZ)).await.status, 503);
        assert_eq!(route(&s, &get(DRAIN)).await.status, 200);
    }
}
