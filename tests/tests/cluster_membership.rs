//! Gossip membership with real node processes: nodes find each other through a seed, fill
//! system.peers, drivers discover the whole cluster from one contact point, CQL events
//! report nodes going down and coming back, and `shoal status` prints the ring.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use scylla::client::session_builder::SessionBuilder;
use scylla::policies::host_filter::AllowListHostFilter;
use shoal_tests::{Cluster, Node, RingMember, ring, shoal_bin, wait_until};
use uuid::Uuid;

const FAST_DRAIN: &[&str] = &["--drain-delay-ms", "0"];

/// A session that only ever talks to `node` (system.peers is per node).
async fn pinned_session(node: &Node) -> scylla::client::session::Session {
    let filter = AllowListHostFilter::new([node.addr()]).expect("allow list");
    SessionBuilder::new()
        .known_node_addr(node.addr())
        .host_filter(Arc::new(filter))
        .connection_timeout(Duration::from_secs(5))
        .build()
        .await
        .unwrap_or_else(|e| panic!("connect to {}: {e}\n{}", node.addr(), node.stderr_tail()))
}

type PeerRow = (
    IpAddr,
    Option<String>,
    Option<Uuid>,
    Option<IpAddr>,
    Option<String>,
    Option<String>,
    Option<IpAddr>,
    Option<Uuid>,
    Option<Vec<String>>,
);

type DescribeClusterRow = (String, String, String, HashMap<String, Vec<String>>);
type PeerV2Row = (IpAddr, i32, Option<IpAddr>, Option<i32>, Option<Uuid>);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_fill_peers_drivers_discover_all_and_status_prints_the_ring() {
    if shoal_tests::skip_without_cluster() {
        return;
    }
    let cluster = tokio::task::spawn_blocking(|| Cluster::start(3, FAST_DRAIN))
        .await
        .unwrap();
    let ids = cluster.host_ids();
    let ips: Vec<IpAddr> = cluster.nodes.iter().map(|n| n.ip()).collect();

    // system.peers and system.peers_v2 on every node list exactly the two others.
    for (i, node) in cluster.nodes.iter().enumerate() {
        let session = pinned_session(node).await;
        let local: Vec<(Uuid,)> =
            common::rows(&session, "SELECT host_id FROM system.local", ()).await;
        assert_eq!(local[0].0.to_string(), ids[i]);
        let peers: Vec<PeerRow> = common::rows(
            &session,
            "SELECT peer, data_center, host_id, preferred_ip, rack, release_version, \
             rpc_address, schema_version, tokens FROM system.peers",
            (),
        )
        .await;
        let mut seen: Vec<(IpAddr, String)> = peers
            .iter()
            .map(|p| (p.0, p.2.expect("host_id").to_string()))
            .collect();
        seen.sort();
        let mut expected: Vec<(IpAddr, String)> = (0..3)
            .filter(|j| *j != i)
            .map(|j| (ips[j], ids[j].clone()))
            .collect();
        expected.sort();
        assert_eq!(seen, expected, "system.peers on node {i}");
        for p in &peers {
            let j = ips.iter().position(|ip| *ip == p.0).unwrap();
            assert_eq!(p.1.as_deref(), Some("datacenter1"));
            assert_eq!(p.3, Some(p.0), "preferred_ip");
            assert_eq!(p.4.as_deref(), Some("rack1"));
            assert_eq!(p.5.as_deref(), Some("5.0.0-shoal"));
            assert_eq!(p.6, Some(ips[j]), "rpc_address");
            assert!(p.7.is_some(), "schema_version");
            // The tokens are the peer's own, as its system.local says.
            let theirs = pinned_session(&cluster.nodes[j]).await;
            let own: Vec<(Vec<String>,)> =
                common::rows(&theirs, "SELECT tokens FROM system.local", ()).await;
            let a: BTreeSet<&String> = p.8.as_ref().expect("tokens").iter().collect();
            let b: BTreeSet<&String> = own[0].0.iter().collect();
            assert_eq!(a.len(), 16);
            assert_eq!(a, b, "tokens of node {j} as node {i} sees them");
        }
        let v2: Vec<PeerV2Row> = common::rows(
            &session,
            "SELECT peer, peer_port, native_address, native_port, host_id FROM system.peers_v2",
            (),
        )
        .await;
        assert_eq!(v2.len(), 2, "{v2:?}");
        for r in &v2 {
            assert_eq!(r.1, 7000);
            assert_eq!(r.2, Some(r.0));
            assert_eq!(r.3, Some(9042));
        }
    }

    // One contact point is enough for a driver to find the whole cluster.
    let session = SessionBuilder::new()
        .known_node_addr(cluster.nodes[0].addr())
        .build()
        .await
        .expect("connect");
    let found: BTreeSet<SocketAddr> = session
        .get_cluster_state()
        .get_nodes_info()
        .iter()
        .map(|n| SocketAddr::new(n.address.ip(), n.address.port()))
        .collect();
    let all: BTreeSet<SocketAddr> = cluster.nodes.iter().map(|n| n.addr()).collect();
    assert_eq!(found, all);
    let found_ids: BTreeSet<String> = session
        .get_cluster_state()
        .get_nodes_info()
        .iter()
        .map(|n| n.host_id.to_string())
        .collect();
    assert_eq!(found_ids, ids.iter().cloned().collect());

    // shoal status against node 1: one UN line per node, ownership adding up to 100 %.
    let out = Command::new(shoal_bin())
        .args([
            "status",
            "--host",
            &ips[1].to_string(),
            "--admin-port",
            "8080",
        ])
        .output()
        .expect("run shoal status");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "Datacenter: datacenter1", "{text}");
    assert_eq!(lines[2], "Status=Up/Down", "{text}");
    assert_eq!(lines[3], "|/ State=Normal/Leaving/Joining/Moving", "{text}");
    let header: Vec<&str> = lines[4].split("  ").filter(|s| !s.is_empty()).collect();
    assert_eq!(
        header.iter().map(|s| s.trim()).collect::<Vec<_>>(),
        ["--", "Address", "Load", "Tokens", "Owns", "Host ID", "Rack"],
        "{text}"
    );
    assert_eq!(lines.len(), 8, "{text}");
    let mut total = 0.0;
    for (ip, id) in ips.iter().zip(&ids) {
        let line = lines
            .iter()
            .find(|l| l.split_whitespace().nth(1) == Some(&ip.to_string()))
            .unwrap_or_else(|| panic!("no line for {ip}:\n{text}"));
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cols[0], "UN", "{text}");
        assert!(line.contains(id.as_str()), "{text}");
        assert!(line.ends_with("rack1"), "{text}");
        let owns = cols.iter().find(|c| c.ends_with('%')).expect("owns");
        total += owns.trim_end_matches('%').parse::<f64>().unwrap();
    }
    assert!(
        (total - 100.0).abs() < 0.5,
        "ownership adds up to {total}:\n{text}"
    );

    // With a keyspace: ownership effective for its replication (RF 3 of 3 nodes: 100 % each).
    let s0 = pinned_session(&cluster.nodes[1]).await;
    common::exec(
        &s0,
        "CREATE KEYSPACE status_rf3 WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}",
    )
    .await;
    // DESCRIBE CLUSTER in that keyspace: every range of the 3-node ring on all 3 nodes.
    s0.use_keyspace("status_rf3", false).await.expect("USE");
    let describe: Vec<DescribeClusterRow> = common::rows(&s0, "DESCRIBE CLUSTER", ()).await;
    let ranges = &describe[0].3;
    assert_eq!(ranges.len(), 48, "{ranges:?}");
    let everyone: BTreeSet<String> = ips.iter().map(|ip| format!("/{ip}:7000")).collect();
    for (token, endpoints) in ranges {
        let set: BTreeSet<String> = endpoints.iter().cloned().collect();
        assert_eq!(set, everyone, "range ending at {token}");
    }

    let out = Command::new(shoal_bin())
        .args(["status", "--host", &ips[1].to_string(), "status_rf3"])
        .output()
        .expect("run shoal status");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}");
    assert!(text.contains("Owns (effective)"), "{text}");
    assert_eq!(text.matches("100.0%").count(), 3, "{text}");
    let out = Command::new(shoal_bin())
        .args(["status", "--host", &ips[1].to_string(), "no_such_ks"])
        .output()
        .expect("run shoal status");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
}

#[test]
fn simultaneous_start_forms_one_ring() {
    if shoal_tests::skip_without_cluster() {
        return;
    }
    let cluster = Cluster::start_simultaneously(3, FAST_DRAIN);
    let mut ids = cluster.host_ids();
    ids.sort();
    let views: Vec<Vec<RingMember>> = cluster
        .nodes
        .iter()
        .map(|n| ring(n.ip()).expect("/ring"))
        .collect();
    for (i, v) in views.iter().enumerate() {
        let mut seen: Vec<String> = v.iter().map(|m| m.host_id.clone()).collect();
        seen.sort();
        assert_eq!(seen, ids, "node {i}'s ring");
        assert!(v.iter().all(|m| m.tokens == 16), "{v:?}");
        let owns: f64 = v
            .iter()
            .map(|m| m.owns.unwrap_or_else(|| panic!("owns missing in {v:?}")))
            .sum();
        assert!(
            (owns - 1.0).abs() < 1e-6,
            "node {i}: ownership sums to {owns}"
        );
    }
    // Every node sees the same ownership for every member.
    let key = |v: &Vec<RingMember>| {
        let mut o: Vec<(String, String)> = v
            .iter()
            .map(|m| (m.host_id.clone(), format!("{:.6}", m.owns.unwrap())))
            .collect();
        o.sort();
        o
    };
    assert_eq!(key(&views[0]), key(&views[1]));
    assert_eq!(key(&views[0]), key(&views[2]));
}

/// A native-protocol v4 connection that sent REGISTER for topology and status events.
struct EventConn {
    s: TcpStream,
}

fn frame(opcode: u8, stream: i16, body: &[u8]) -> Vec<u8> {
    let mut f = vec![0x04, 0];
    f.extend_from_slice(&stream.to_be_bytes());
    f.push(opcode);
    f.extend_from_slice(&(body.len() as u32).to_be_bytes());
    f.extend_from_slice(body);
    f
}

fn string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

impl EventConn {
    fn open(addr: SocketAddr) -> EventConn {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
        let mut startup = 1u16.to_be_bytes().to_vec();
        string(&mut startup, "CQL_VERSION");
        string(&mut startup, "3.0.0");
        s.write_all(&frame(0x01, 1, &startup)).unwrap();
        let mut c = EventConn { s };
        let (op, _) = c.read(Duration::from_secs(5)).expect("READY");
        assert_eq!(op, 0x02, "READY");
        let mut reg = 2u16.to_be_bytes().to_vec();
        string(&mut reg, "TOPOLOGY_CHANGE");
        string(&mut reg, "STATUS_CHANGE");
        c.s.write_all(&frame(0x0B, 2, &reg)).unwrap();
        let (op, _) = c
            .read(Duration::from_secs(5))
            .expect("READY after REGISTER");
        assert_eq!(op, 0x02);
        c
    }

    fn read(&mut self, timeout: Duration) -> Option<(u8, Vec<u8>)> {
        self.s.set_read_timeout(Some(timeout)).unwrap();
        let mut head = [0u8; 9];
        self.s.read_exact(&mut head).ok()?;
        let len = u32::from_be_bytes(head[5..9].try_into().unwrap()) as usize;
        let mut body = vec![0u8; len];
        self.s
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        self.s.read_exact(&mut body).ok()?;
        Some((head[4], body))
    }

    /// Waits for an event `(type, change, address)`; other events are skipped.
    fn wait_for(&mut self, kind: &str, change: &str, addr: SocketAddr, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        while Instant::now() < deadline {
            let left = deadline - Instant::now();
            let Some((op, body)) = self.read(left) else {
                break;
            };
            if op != 0x0C {
                continue;
            }
            let ev = parse_event(&body);
            if ev == (kind.to_string(), change.to_string(), addr) {
                return;
            }
            seen.push(ev);
        }
        panic!("no {kind} {change} {addr} within {timeout:?}; saw {seen:?}");
    }
}

fn parse_event(b: &[u8]) -> (String, String, SocketAddr) {
    let mut i = 0;
    let mut s = || {
        let n = u16::from_be_bytes([b[i], b[i + 1]]) as usize;
        let v = String::from_utf8_lossy(&b[i + 2..i + 2 + n]).into_owned();
        i += 2 + n;
        v
    };
    let (kind, change) = (s(), s());
    let n = b[i] as usize;
    let ip: IpAddr = match n {
        4 => IpAddr::from(<[u8; 4]>::try_from(&b[i + 1..i + 5]).unwrap()),
        _ => IpAddr::from(<[u8; 16]>::try_from(&b[i + 1..i + 17]).unwrap()),
    };
    let port = i32::from_be_bytes(b[i + 1 + n..i + 5 + n].try_into().unwrap());
    (kind, change, SocketAddr::new(ip, port as u16))
}

fn member_status(ip: IpAddr, host: &str) -> Option<String> {
    ring(ip)?
        .into_iter()
        .find(|m| m.host_id == host)
        .map(|m| m.status)
}

#[test]
fn stopped_and_killed_nodes_are_reported_down_then_up_again() {
    if shoal_tests::skip_without_cluster() {
        return;
    }
    let mut cluster = Cluster::start(3, FAST_DRAIN);
    let ids = cluster.host_ids();
    let watcher_ip = cluster.nodes[0].ip();
    let mut events = EventConn::open(cluster.nodes[0].addr());
    let victim = cluster.nodes[2].addr();

    // A clean stop announces itself: peers mark it down at once, not after the ~18 s the
    // failure detector needs.
    let stopped = Instant::now();
    let status = cluster.nodes[2].terminate();
    assert!(status.success(), "{status}");
    events.wait_for("STATUS_CHANGE", "DOWN", victim, Duration::from_secs(10));
    let down_after = stopped.elapsed();
    assert_eq!(member_status(watcher_ip, &ids[2]).as_deref(), Some("Down"));
    shoal_tests::record(&format!(
        "membership: SIGTERM'd node reported DOWN after {} ms",
        down_after.as_millis()
    ));

    // Back on the same data directory: same host id, UP again.
    cluster.nodes[2].restart();
    events.wait_for("STATUS_CHANGE", "UP", victim, Duration::from_secs(30));
    cluster.wait_converged(Duration::from_secs(30));
    assert_eq!(cluster.host_ids(), ids);

    // A crash says nothing: the failure detector convicts the silent node.
    let killed = Instant::now();
    cluster.nodes[2].kill9();
    events.wait_for("STATUS_CHANGE", "DOWN", victim, Duration::from_secs(60));
    shoal_tests::record(&format!(
        "membership: kill -9'd node reported DOWN after {} ms",
        killed.elapsed().as_millis()
    ));
    wait_until("node 1 to see node 2 down", Duration::from_secs(60), || {
        (member_status(cluster.nodes[1].ip(), &ids[2]).as_deref() == Some("Down")).then_some(())
    });
    cluster.nodes[2].restart();
    events.wait_for("STATUS_CHANGE", "UP", victim, Duration::from_secs(30));
    cluster.wait_converged(Duration::from_secs(30));
    assert_eq!(cluster.host_ids(), ids);
}
