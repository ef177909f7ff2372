//! Seed discovery through a headless Service (kubernetes.md §3 rules 3 and 6).
//!
//! Seeds are names (`shoal-peers`) or addresses. Every name resolves to *all* its A/AAAA
//! records (a headless Service lists every pod; Apache's SimpleSeedProvider took one, §3 #3),
//! and resolution repeats: quickly while the node has no live peer (pods appear in DNS only
//! once they run, §2 #4), slowly afterwards. The result is merged with the peers the node
//! persisted, so a restarted node never depends on DNS alone (§2 #4, #5).

use std::collections::BTreeSet;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tracing::{debug, warn};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Name -> addresses. A trait so tests (and the gossip work's simulations) can script DNS.
pub trait Resolve: Send + Sync + 'static {
    fn resolve<'a>(&'a self, name: &'a str) -> BoxFuture<'a, io::Result<Vec<IpAddr>>>;
}

/// The real resolver: hickory reading /etc/resolv.conf (search domains, ndots, servers).
pub struct DnsResolver {
    inner: hickory_resolver::TokioResolver,
}

impl DnsResolver {
    pub fn from_system() -> io::Result<DnsResolver> {
        let mut builder =
            hickory_resolver::TokioResolver::builder_tokio().map_err(io::Error::other)?;
        let opts = builder.options_mut();
        // Headless-Service answers change as pods come and go; a cached answer would hide
        // new peers for the record's TTL (Docker's embedded DNS says 600 s).
        opts.positive_max_ttl = Some(Duration::from_secs(5));
        opts.negative_max_ttl = Some(Duration::from_secs(1));
        opts.ip_strategy = hickory_resolver::config::LookupIpStrategy::Ipv4AndIpv6;
        let inner = builder.build().map_err(io::Error::other)?;
        Ok(DnsResolver { inner })
    }
}

impl Resolve for DnsResolver {
    fn resolve<'a>(&'a self, name: &'a str) -> BoxFuture<'a, io::Result<Vec<IpAddr>>> {
        Box::pin(async move {
            let answer = self.inner.lookup_ip(name).await.map_err(io::Error::other)?;
            Ok(answer.iter().collect())
        })
    }
}

/// One entry of the seed list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seed {
    Addr(SocketAddr),
    Name { host: String, port: u16 },
}

/// Parses `host`, `host:port`, `ip`, `ip:port` or `[v6]:port`; `default_port` otherwise.
pub fn parse_seed(s: &str, default_port: u16) -> Option<Seed> {
    let s = s.trim();
    if s.is_empty() || s.contains(char::is_whitespace) {
        return None;
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(Seed::Addr(SocketAddr::new(ip, default_port)));
    }
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Some(Seed::Addr(sa));
    }
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) => (h, p.parse::<u16>().ok()?),
        None => (s, default_port),
    };
    if host.is_empty() || host.contains([':', '[', ']', '/']) {
        return None;
    }
    Some(Seed::Name {
        host: host.to_string(),
        port,
    })
}

#[derive(Clone, Debug)]
pub struct DiscoveryConfig {
    pub seeds: Vec<Seed>,
    /// This node's own addresses: never a seed for itself.
    pub own: Vec<IpAddr>,
    /// Re-resolution period while no peer is live; doubles up to `slow_interval`.
    pub fast_interval: Duration,
    pub slow_interval: Duration,
}

impl DiscoveryConfig {
    pub fn new(seeds: &[String], default_port: u16, own: Vec<IpAddr>) -> DiscoveryConfig {
        DiscoveryConfig {
            seeds: seeds
                .iter()
                .filter_map(|s| {
                    let parsed = parse_seed(s, default_port);
                    if parsed.is_none() {
                        warn!(seed = %s, "ignoring a seed that is neither an address nor a host name");
                    }
                    parsed
                })
                .collect(),
            own,
            fast_interval: Duration::from_secs(1),
            slow_interval: Duration::from_secs(30),
        }
    }
}

/// One resolution round. A failing name is logged and contributes nothing; the others still
/// count (one bad seed must not hide the good ones). Returns the addresses and whether every
/// name answered.
pub async fn resolve_round(
    cfg: &DiscoveryConfig,
    resolver: &dyn Resolve,
) -> (Vec<SocketAddr>, bool) {
    let mut out = BTreeSet::new();
    let mut complete = true;
    for seed in &cfg.seeds {
        match seed {
            Seed::Addr(a) => {
                out.insert(*a);
            }
            Seed::Name { host, port } => match resolver.resolve(host).await {
                Ok(ips) if !ips.is_empty() => {
                    out.extend(ips.into_iter().map(|ip| SocketAddr::new(ip, *port)))
                }
                Ok(_) => {
                    complete = false;
                    debug!(seed = %host, "seed name has no addresses yet");
                }
                Err(e) => {
                    complete = false;
                    debug!(seed = %host, error = %e, "seed name did not resolve");
                }
            },
        }
    }
    out.retain(|a| !cfg.own.contains(&a.ip()));
    (out.into_iter().collect(), complete)
}

/// Union of resolved seeds and persisted peers, without this node, sorted (so an unchanged
/// set compares equal and watchers are not woken for nothing).
pub fn merge(resolved: &[SocketAddr], persisted: &[SocketAddr], own: &[IpAddr]) -> Vec<SocketAddr> {
    let set: BTreeSet<SocketAddr> = resolved
        .iter()
        .chain(persisted)
        .copied()
        .filter(|a| !own.contains(&a.ip()))
        .collect();
    set.into_iter().collect()
}

/// The wait before the next resolution round.
///
/// A changed answer means pods are coming, going or moving (a StatefulSet's pods start within
/// seconds of each other, a rescheduled pod gets a new IP): look again soon, from the fast
/// interval. Otherwise back off by doubling: up to a few seconds while no peer is live (the
/// state in which a pod waits for its peers to show up in DNS), up to the slow interval
/// once one is. Jumping straight to the slow interval at the first live peer would hide the
/// pods that appear a second later for the whole slow interval.
pub fn next_interval(
    cfg: &DiscoveryConfig,
    current: Duration,
    changed: bool,
    live_peer: bool,
) -> Duration {
    if changed {
        return cfg.fast_interval;
    }
    let cap = if live_peer {
        cfg.slow_interval
    } else {
        cfg.slow_interval.min(Duration::from_secs(10))
    }
    .max(cfg.fast_interval);
    (current * 2).min(cap)
}

/// Runs discovery until every receiver of the returned channel is gone.
///
/// `persisted`: peers the node stored (system.peers equivalent), updated by the cluster
/// layer. `live_peer`: true while gossip sees at least one live peer.
pub fn spawn(
    cfg: DiscoveryConfig,
    resolver: Arc<dyn Resolve>,
    mut persisted: watch::Receiver<Vec<SocketAddr>>,
    mut live_peer: watch::Receiver<bool>,
) -> watch::Receiver<Vec<SocketAddr>> {
    let initial = merge(&[], &persisted.borrow(), &cfg.own);
    let (tx, rx) = watch::channel(initial);
    tokio::spawn(async move {
        let mut interval = cfg.fast_interval / 2;
        // A dropped sender means "no more updates", not "wake me up forever".
        let (mut persisted_open, mut live_open) = (true, true);
        loop {
            let (resolved, _complete) = resolve_round(&cfg, resolver.as_ref()).await;
            let merged = merge(&resolved, &persisted.borrow_and_update(), &cfg.own);
            let changed = tx.send_if_modified(|cur| {
                if *cur == merged {
                    false
                } else {
                    debug!(peers = ?merged, "discovered peers changed");
                    *cur = merged;
                    true
                }
            });
            interval = next_interval(&cfg, interval, changed, *live_peer.borrow_and_update());
            tokio::select! {
                _ = tx.closed() => return,
                _ = tokio::time::sleep(interval) => {}
                r = persisted.changed(), if persisted_open => persisted_open = r.is_ok(),
                r = live_peer.changed(), if live_open => {
                    live_open = r.is_ok();
                    // Losing every peer is exactly when fresh DNS answers matter most.
                    interval = cfg.fast_interval / 2;
                }
            }
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::Mutex;

    /// Scripted DNS: answers can be changed while discovery runs.
    #[derive(Default)]
    struct FakeDns {
        answers: Mutex<HashMap<String, io::Result<Vec<IpAddr>>>>,
        calls: Mutex<Vec<String>>,
    }

    impl FakeDns {
        fn set(&self, name: &str, ips: &[&str]) {
            self.answers.lock().unwrap().insert(
                name.into(),
                Ok(ips.iter().map(|s| s.parse().unwrap()).collect()),
            );
        }
        fn fail(&self, name: &str) {
            self.answers
                .lock()
                .unwrap()
                .insert(name.into(), Err(io::Error::other("NXDOMAIN")));
        }
    }

    impl Resolve for FakeDns {
        fn resolve<'a>(&'a self, name: &'a str) -> BoxFuture<'a, io::Result<Vec<IpAddr>>> {
            self.calls.lock().unwrap().push(name.to_string());
            let r = match self.answers.lock().unwrap().get(name) {
                Some(Ok(v)) => Ok(v.clone()),
                Some(Err(e)) => Err(io::Error::other(e.to_string())),
                None => Err(io::Error::other("no such name")),
            };
            Box::pin(async move { r })
        }
    }

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_seed_forms() {
        assert_eq!(
            parse_seed("10.0.0.1", 7000),
            Some(Seed::Addr(sa("10.0.0.1:7000")))
        );
        assert_eq!(
            parse_seed("10.0.0.1:7001", 7000),
            Some(Seed::Addr(sa("10.0.0.1:7001")))
        );
        assert_eq!(parse_seed("::1", 7000), Some(Seed::Addr(sa("[::1]:7000"))));
        assert_eq!(parse_seed("[::1]:9", 7000), Some(Seed::Addr(sa("[::1]:9"))));
        assert_eq!(
            parse_seed(" shoal-peers ", 7000),
            Some(Seed::Name {
                host: "shoal-peers".into(),
                port: 7000
            })
        );
        assert_eq!(
            parse_seed("shoal-0.shoal-peers.db.svc:7001", 7000),
            Some(Seed::Name {
                host: "shoal-0.shoal-peers.db.svc".into(),
                port: 7001
            })
        );
        for bad in ["", "  ", "a b", "host:notaport", ":7000", "[::1", "a/b"] {
            assert_eq!(parse_seed(bad, 7000), None, "{bad:?}");
        }
    }

    #[tokio::test]
    async fn every_a_record_counts_and_self_is_excluded() {
        let dns = FakeDns::default();
        dns.set("peers", &["10.0.0.3", "10.0.0.1", "10.0.0.2"]);
        dns.fail("broken");
        let cfg = DiscoveryConfig::new(
            &["peers".into(), "broken".into(), "10.0.0.9:7001".into()],
            7000,
            vec!["10.0.0.2".parse().unwrap()],
        );
        let (got, complete) = resolve_round(&cfg, &dns).await;
        assert!(!complete);
        assert_eq!(
            got,
            vec![
                sa("10.0.0.1:7000"),
                sa("10.0.0.3:7000"),
                sa("10.0.0.9:7001")
            ]
        );
    }

    #[test]
    fn merge_unions_and_sorts() {
        let own = ["10.0.0.1".parse().unwrap()];
        assert_eq!(
            merge(
                &[sa("10.0.0.3:7000"), sa("10.0.0.1:7000")],
                &[sa("10.0.0.2:7000"), sa("10.0.0.3:7000")],
                &own
            ),
            vec![sa("10.0.0.2:7000"), sa("10.0.0.3:7000")]
        );
    }

    #[test]
    fn interval_resets_on_change_and_backs_off_to_the_slow_interval() {
        let cfg = DiscoveryConfig::new(&["peers".into()], 7000, vec![]);
        let secs = Duration::from_secs;
        // Pods appearing: look again soon, live peer or not.
        assert_eq!(next_interval(&cfg, secs(30), true, true), secs(1));
        assert_eq!(next_interval(&cfg, secs(8), true, false), secs(1));
        // A stable answer with no live peer: doubling, at most 10 s.
        assert_eq!(next_interval(&cfg, secs(1), false, false), secs(2));
        assert_eq!(next_interval(&cfg, secs(8), false, false), secs(10));
        // A stable answer with a live peer: doubling up to the slow interval, not at once.
        let mut i = secs(1);
        let mut steps = Vec::new();
        while i < cfg.slow_interval {
            i = next_interval(&cfg, i, false, true);
            steps.push(i.as_secs());
        }
        assert_eq!(steps, [2, 4, 8, 16, 30]);
    }

    /// Three pods start a second apart; the first one sees a live peer as soon as the second
    /// is up, and must still list the third within seconds, not after the slow interval.
    #[tokio::test]
    async fn pods_appearing_after_the_first_live_peer_are_found_quickly() {
        let dns = Arc::new(FakeDns::default());
        dns.set("peers", &["10.0.0.2"]);
        let mut cfg = DiscoveryConfig::new(&["peers".into()], 7000, vec![]);
        cfg.fast_interval = Duration::from_millis(20);
        cfg.slow_interval = Duration::from_secs(3600);
        let (_persist_tx, persist_rx) = watch::channel(vec![]);
        let (live_tx, live_rx) = watch::channel(false);
        let mut rx = spawn(cfg, dns.clone(), persist_rx, live_rx);
        wait_for(&mut rx, &[sa("10.0.0.2:7000")]).await;
        live_tx.send(true).unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        dns.set("peers", &["10.0.0.2", "10.0.0.3"]);
        wait_for(&mut rx, &[sa("10.0.0.2:7000"), sa("10.0.0.3:7000")]).await;
        // A pod rescheduled with a new IP shortly after.
        dns.set("peers", &["10.0.0.3", "10.0.0.4"]);
        wait_for(&mut rx, &[sa("10.0.0.3:7000"), sa("10.0.0.4:7000")]).await;
    }

    async fn wait_for(rx: &mut watch::Receiver<Vec<SocketAddr>>, want: &[SocketAddr]) {
        tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                if rx.borrow_and_update().as_slice() == want {
                    return;
                }
                rx.changed().await.expect("discovery stopped");
            }
        })
        .await
        .unwrap_or_else(|_| panic!("wanted {want:?}, have {:?}", *rx.borrow()));
    }

    #[tokio::test]
    async fn re_resolves_until_peers_appear_and_merges_persisted() {
        let dns = Arc::new(FakeDns::default());
        dns.set("peers", &[]);
        let mut cfg = DiscoveryConfig::new(&["peers".into()], 7000, vec![]);
        cfg.fast_interval = Duration::from_millis(5);
        cfg.slow_interval = Duration::from_millis(20);
        let (persist_tx, persist_rx) = watch::channel(vec![sa("10.9.9.9:7000")]);
        let (live_tx, live_rx) = watch::channel(false);
        let mut rx = spawn(cfg, dns.clone(), persist_rx, live_rx);
        // Empty DNS (all pods recreated together, §2 #4): persisted peers still count.
        wait_for(&mut rx, &[sa("10.9.9.9:7000")]).await;
        dns.set("peers", &["10.0.0.1", "10.0.0.2"]);
        wait_for(
            &mut rx,
            &[
                sa("10.0.0.1:7000"),
                sa("10.0.0.2:7000"),
                sa("10.9.9.9:7000"),
            ],
        )
        .await;
        persist_tx.send(vec![]).unwrap();
        wait_for(&mut rx, &[sa("10.0.0.1:7000"), sa("10.0.0.2:7000")]).await;
        // With a live peer it keeps re-resolving (slowly): a pod IP change still shows up.
        live_tx.send(true).unwrap();
        dns.set("peers", &["10.0.0.1", "10.0.0.7"]);
        wait_for(&mut rx, &[sa("10.0.0.1:7000"), sa("10.0.0.7:7000")]).await;
        dns.fail("peers");
        let calls = dns.calls.lock().unwrap().len();
        assert!(calls >= 3, "resolved only {calls} times");
    }
}
