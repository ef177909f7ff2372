//! The admin HTTP endpoint of a real node: probes, metrics, status, `/drain`, and the
//! SIGTERM drain sequence under write load (kubernetes.md §3 rules 7-9).

mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use shoal_tests::{ADMIN_PORT, Node, NodeOptions, skip_if_external};

/// One HTTP/1.1 request; returns (status, body). Panics on transport errors.
fn http(ip: IpAddr, method: &str, path: &str) -> (u16, String) {
    try_http(ip, method, path, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{method} {path} on {ip}:{ADMIN_PORT}: {e}"))
}

fn try_http(
    ip: IpAddr,
    method: &str,
    path: &str,
    timeout: Duration,
) -> std::io::Result<(u16, String)> {
    let raw =
        format!("{method} {path} HTTP/1.1\r\nHost: {ip}\r\nUser-Agent: kube-probe/test\r\n\r\n");
    let (status, body) = raw_http(ip, raw.as_bytes(), timeout)?;
    Ok((status, body))
}

fn raw_http(ip: IpAddr, request: &[u8], timeout: Duration) -> std::io::Result<(u16, String)> {
    let mut s =
        TcpStream::connect_timeout(&SocketAddr::new(ip, ADMIN_PORT), Duration::from_secs(2))?;
    s.set_read_timeout(Some(timeout))?;
    s.write_all(request)?;
    let mut buf = String::new();
    s.read_to_string(&mut buf)?;
    let status = buf
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status line in {buf:?}")))?;
    let body = buf
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

fn opts(extra: &[&str]) -> NodeOptions {
    NodeOptions {
        extra_args: extra.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

fn sigterm(node: &Node) {
    let pid = node.pid().expect("node runs");
    let ok = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(ok.success());
}

#[test]
fn probes_metrics_and_status() {
    let node = Node::start(opts(&["--drain-delay-ms", "0"]));
    skip_if_external!(node, "the admin port belongs to a shoal process");
    let ip = node.ip();
    assert_eq!(http(ip, "GET", "/livez").0, 200);
    assert_eq!(http(ip, "GET", "/startupz").0, 200);
    let (status, body) = http(ip, "GET", "/readyz");
    assert_eq!(status, 200, "{body}");
    assert_eq!(http(ip, "HEAD", "/readyz").0, 200);
    assert_eq!(http(ip, "GET", "/no-such-path").0, 404);
    assert_eq!(http(ip, "POST", "/readyz").0, 405);

    let (status, metrics) = http(ip, "GET", "/metrics");
    assert_eq!(status, 200);
    for name in [
        "shoal_client_request_duration_seconds",
        "shoal_client_requests_total",
        "shoal_client_request_errors_total",
        "shoal_client_request_timeouts_total",
        "shoal_connected_native_clients",
        "shoal_memtable_bytes",
        "shoal_pending_flushes",
        "shoal_pending_compactions",
        "shoal_sstables",
        "shoal_hints_pending",
        "shoal_gossip_live_members",
        "shoal_gossip_down_members",
        "shoal_dropped_messages_total",
        "shoal_node_ready",
    ] {
        assert!(
            metrics.contains(&format!("# TYPE {name} ")),
            "{name} missing from /metrics:\n{metrics}"
        );
    }
    assert!(metrics.contains("shoal_node_ready 1"));

    let (status, body) = http(ip, "GET", "/status");
    assert_eq!(status, 200);
    let v: serde_like::Json = serde_like::parse(&body);
    assert_eq!(v.get("state"), Some("NORMAL"), "{body}");
    assert!(
        body.contains("\"host_id\":\"") && !body.contains("\"host_id\":\"\""),
        "{body}"
    );
    assert!(body.contains(&format!("\"rpc\":\"{ip}\"")), "{body}");

    // Garbage never takes the endpoint down.
    for junk in [
        &b"\x00\x01\x02\r\n\r\n"[..],
        b"GET /readyz\r\n\r\n",
        &[b'A'; 20_000][..],
    ] {
        let r = raw_http(ip, junk, Duration::from_secs(10));
        if let Ok((status, _)) = r {
            assert!(matches!(status, 400 | 431), "junk answered {status}");
        }
    }
    assert_eq!(http(ip, "GET", "/livez").0, 200);
}

/// Tiny JSON field reader so the test needs no serde dependency.
mod serde_like {
    pub struct Json(String);
    pub fn parse(s: &str) -> Json {
        Json(s.to_string())
    }
    impl Json {
        pub fn get(&self, key: &str) -> Option<&str> {
            let pat = format!("\"{key}\":\"");
            let start = self.0.find(&pat)? + pat.len();
            let end = self.0[start..].find('"')? + start;
            Some(&self.0[start..end])
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_readiness_first_and_keeps_every_acknowledged_write() {
    const DELAY_MS: u64 = 1500;
    let mut node = Node::start(opts(&["--drain-delay-ms", &DELAY_MS.to_string()]));
    skip_if_external!(node, "SIGTERM needs a process the harness started");
    let ip = node.ip();
    let session = Arc::new(common::connect(&node).await);
    let ks = common::create_keyspace(&session).await;
    common::exec(
        &session,
        format!("CREATE TABLE {ks}.t (w int, seq int, v text, PRIMARY KEY (w, seq))"),
    )
    .await;
    let insert = session
        .prepare(format!("INSERT INTO {ks}.t (w, seq, v) VALUES (?, ?, ?)"))
        .await
        .expect("prepare");

    let stop = Arc::new(AtomicBool::new(false));
    let acked: Arc<Mutex<Vec<(i32, i32, Instant)>>> = Arc::default();
    let mut writers = Vec::new();
    for w in 0..4 {
        let (session, insert, stop, acked) =
            (session.clone(), insert.clone(), stop.clone(), acked.clone());
        writers.push(tokio::spawn(async move {
            let mut seq = 0;
            while !stop.load(Ordering::Relaxed) {
                if session
                    .execute_unpaged(&insert, (w, seq, format!("w{w} s{seq}")))
                    .await
                    .is_err()
                {
                    // Closed by the drain: a later write may land on a fresh connection.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
                acked.lock().unwrap().push((w, seq, Instant::now()));
                seq += 1;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !acked.lock().unwrap().is_empty(),
        "no write acknowledged before SIGTERM"
    );

    // Probes stay fast under the write load: they run on their own thread and read atomics.
    let mut worst = Duration::ZERO;
    for path in ["/readyz", "/livez", "/metrics"].iter().cycle().take(60) {
        let t = Instant::now();
        assert_eq!(http(ip, "GET", path).0, 200, "{path} under load");
        worst = worst.max(t.elapsed());
    }
    shoal_tests::record(&format!(
        "k8s_admin: slowest of 60 probes under write load: {worst:?}"
    ));
    assert!(
        worst < Duration::from_secs(1),
        "a probe took {worst:?} under load"
    );
    // The writes under way show up per operation and consistency level.
    let (_, metrics) = http(ip, "GET", "/metrics");
    let executes: u64 = metrics
        .lines()
        .find(|l| l.starts_with("shoal_client_requests_total{op=\"EXECUTE\""))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(
        executes > 0,
        "no EXECUTE requests counted in /metrics:\n{metrics}"
    );

    let signalled = Instant::now();
    sigterm(&node);
    // Readiness must drop first, while CQL still serves.
    let unready_at = loop {
        let (status, _) = try_http(ip, "GET", "/readyz", Duration::from_secs(2))
            .expect("admin answers while draining");
        if status == 503 {
            break Instant::now();
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(2),
            "/readyz still 200 two seconds after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    tokio::time::sleep(Duration::from_millis(DELAY_MS / 2)).await;
    let served_after_unready = acked
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, _, t)| *t > unready_at)
        .count();
    assert!(
        served_after_unready > 0,
        "CQL stopped before the drain delay: readiness did not go first"
    );
    assert_eq!(
        try_http(ip, "GET", "/livez", Duration::from_secs(2))
            .unwrap()
            .0,
        200
    );

    // A second SIGTERM (terminate() sends one) changes nothing; the exit must be clean and fast.
    let status = node.terminate();
    let took = signalled.elapsed();
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        let _ = w.await;
    }
    assert!(
        status.success(),
        "exit status {status}\n{}",
        node.stderr_tail()
    );
    assert!(took < Duration::from_secs(20), "drain took {took:?}");
    println!(
        "SIGTERM -> exit in {took:?}; {served_after_unready} writes served after readiness dropped"
    );

    let acked = std::mem::take(&mut *acked.lock().unwrap());
    drop(session);
    node.restart();
    let session = common::connect(&node).await;
    let mut rows = session
        .query_iter(format!("SELECT w, seq FROM {ks}.t"), ())
        .await
        .expect("select")
        .rows_stream::<(i32, i32)>()
        .expect("typed rows");
    let mut present = std::collections::HashSet::new();
    while let Some((w, seq)) = rows.try_next().await.expect("row") {
        present.insert((w, seq));
    }
    let missing: Vec<_> = acked
        .iter()
        .filter(|(w, s, _)| !present.contains(&(*w, *s)))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged writes lost, e.g. {:?}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(5)]
    );

    // The drain flushed everything: after the restart the data is in SSTables and the
    // commit-log replay put nothing back into memtables. (The engine may re-read the last
    // segment, so replayed_entries need not be 0; what it re-reads is already flushed.)
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, metrics) = http(node.ip(), "GET", "/metrics");
        let sstables = metrics
            .lines()
            .find_map(|l| l.strip_prefix("shoal_sstables "))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        if metrics.contains("\nshoal_memtable_bytes 0\n") && sstables > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "restart after a drain found unflushed data:\n{metrics}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn drain_endpoint_is_idempotent_and_keeps_the_process_up() {
    let mut node = Node::start(opts(&["--drain-delay-ms", "300"]));
    skip_if_external!(node, "/drain needs a process the harness started");
    let ip = node.ip();
    let started = Instant::now();
    let concurrent = std::thread::spawn(move || http(ip, "POST", "/drain"));
    let first = http(ip, "GET", "/drain");
    assert_eq!(first.0, 200, "{}", first.1);
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "/drain returned before the drain finished"
    );
    assert_eq!(concurrent.join().unwrap().0, 200);

    // Drained like `nodetool drain`: alive, not ready, CQL closed, /drain still fine.
    assert_eq!(http(ip, "GET", "/livez").0, 200);
    assert_eq!(http(ip, "GET", "/startupz").0, 200);
    assert_eq!(http(ip, "GET", "/readyz").0, 503);
    assert!(
        TcpStream::connect_timeout(&node.addr(), Duration::from_secs(1)).is_err(),
        "CQL still accepts after drain"
    );
    let again = Instant::now();
    assert_eq!(http(ip, "GET", "/drain").0, 200);
    assert!(
        again.elapsed() < Duration::from_millis(250),
        "a drained node drains again"
    );
    assert!(
        http(ip, "GET", "/status")
            .1
            .contains("\"state\":\"DRAINED\"")
    );

    let t = Instant::now();
    let status = node.terminate();
    assert!(
        status.success(),
        "exit status {status}\n{}",
        node.stderr_tail()
    );
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "exit after drain took {:?}",
        t.elapsed()
    );
}
