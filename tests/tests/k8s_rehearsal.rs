//! The StatefulSet rehearsal (issue #6) with the real image, in Docker.
//!
//! Three containers `shoal-0..2` of `shoal:dev` (docker/build.sh) on a user-defined
//! network, sharing the network alias `shoal-peers` as pods share a headless Service (Docker's
//! DNS answers the alias with every running container), one named volume each as their
//! PVCs, `CASSANDRA_SEEDS=shoal-peers` and the image's defaults (listen and broadcast on the
//! container's own IP), all started at the same moment. The test process reaches the
//! containers' IPs directly on the bridge network. It checks, in order:
//!
//! 1. one ring forms from DNS alone: every container's `/ring` lists the same three host ids,
//!    Up and Normal; a higher ordinal answers `/readyz` 503 until it joined a ring that has
//!    a member besides itself;
//! 2. a client (the Rust driver) creates an RF=3 keyspace and writes at QUORUM;
//! 3. a container removed with `docker rm -f` and recreated on its volume with another IP
//!    rejoins with its data and host id; the others update its address
//!    (`NodeAddressChanged`); reads at QUORUM and ALL see every acknowledged write;
//! 4. two containers swap IPs (stopped, each recreated with the other's IP on its own
//!    volume): same host ids, all Up, reads at ALL succeed;
//! 5. SIGTERM (`docker stop -t 60`) drains while a client writes at QUORUM: exit code 0
//!    inside the grace period, and every acknowledged write is readable at ALL once the node
//!    is back.
//!
//! Everything the test created (containers, network, volumes) is removed at the end, also on
//! failure. Without a Docker engine it skips loudly (fails under `CI=true`).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::frame::types::Consistency;
use scylla::policies::host_filter::AllowListHostFilter;
use scylla::statement::prepared::PreparedStatement;
use shoal_tests::docker::{self, IMAGE, Resources, docker, docker_ok};
use shoal_tests::{ADMIN_PORT, CQL_PORT, http_get, record, ring};

const ALIAS: &str = "shoal-peers";
const GRACE_SECS: u64 = 60;
/// Shorter than the image's 5 s so the test stays quick; the drain's order is unchanged.
const DRAIN_DELAY_MS: u64 = 2000;
const SETTLE: Duration = Duration::from_secs(90);

/// The three "pods": their network, subnet and names.
struct StatefulSet {
    res: Resources,
    prefix: String,
    network: String,
    /// First three octets of the /24 the network was created with (`--ip` needs one).
    subnet: [u8; 3],
}

impl StatefulSet {
    fn create() -> StatefulSet {
        let prefix = format!("shoal-rehearsal-{}", std::process::id());
        let network = format!("{prefix}-net");
        let mut res = Resources::default();
        res.network(&network);
        let pid = std::process::id();
        let mut errors = Vec::new();
        for attempt in 0..16u32 {
            let third = (20 + (pid + attempt * 13) % 200) as u8;
            let subnet = [172, 29, third];
            let cidr = format!("172.29.{third}.0/24");
            let out = docker(&["network", "create", "--subnet", &cidr, &network]);
            if out.status.success() {
                return StatefulSet {
                    res,
                    prefix,
                    network,
                    subnet,
                };
            }
            errors.push(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        panic!("could not create a network with a free /24: {errors:?}");
    }

    fn name(&self, ordinal: usize) -> String {
        format!("{}-shoal-{ordinal}", self.prefix)
    }

    fn ip(&self, last: u8) -> IpAddr {
        let [a, b, c] = self.subnet;
        IpAddr::V4(Ipv4Addr::new(a, b, c, last))
    }

    /// `docker run` arguments for pod `ordinal` at `ip`, on its own volume.
    fn run_args(&mut self, ordinal: usize, ip: IpAddr) -> Vec<String> {
        let name = self.name(ordinal);
        let volume = format!("{}-data-{ordinal}", self.prefix);
        self.res.container(&name);
        self.res.volume(&volume);
        [
            "run",
            "-d",
            "--name",
            &name,
            "--hostname",
            &format!("shoal-{ordinal}"),
            "--network",
            &self.network,
            "--network-alias",
            ALIAS,
            "--ip",
            &ip.to_string(),
            "-v",
            &format!("{volume}:/var/lib/shoal"),
            "-e",
            &format!("CASSANDRA_SEEDS={ALIAS}"),
            "-e",
            "CASSANDRA_CLUSTER_NAME=rehearsal",
            "-e",
            "CASSANDRA_DC=dc1",
            "-e",
            "CASSANDRA_RACK=rack1",
            "-e",
            &format!("SHOAL_DRAIN_DELAY_MS={DRAIN_DELAY_MS}"),
            "--stop-timeout",
            &GRACE_SECS.to_string(),
            IMAGE,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    /// Starts pods at the same moment: one `docker run` per thread.
    fn run_together(&mut self, pods: &[(usize, IpAddr)]) {
        let runs: Vec<Vec<String>> = pods
            .iter()
            .map(|(ordinal, ip)| self.run_args(*ordinal, *ip))
            .collect();
        std::thread::scope(|s| {
            for args in &runs {
                s.spawn(move || {
                    let args: Vec<&str> = args.iter().map(String::as_str).collect();
                    docker_ok(&args);
                });
            }
        });
    }

    /// `docker stop -t GRACE` (SIGTERM, the drain) of pods at once; returns how long each took.
    fn stop_together(&self, ordinals: &[usize]) -> Vec<Duration> {
        std::thread::scope(|s| {
            let handles: Vec<_> = ordinals
                .iter()
                .map(|o| {
                    let name = self.name(*o);
                    s.spawn(move || {
                        let t = Instant::now();
                        docker_ok(&["stop", "-t", &GRACE_SECS.to_string(), &name]);
                        let took = t.elapsed();
                        let code = docker::exit_code(&name);
                        assert_eq!(
                            code,
                            0,
                            "{name} exited with {code} on SIGTERM:\n{}",
                            docker::logs(&name, 30)
                        );
                        assert!(
                            took < Duration::from_secs(GRACE_SECS - 10),
                            "{name} took {took:?} to drain (grace period {GRACE_SECS} s)"
                        );
                        took
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        })
    }

    fn logs(&self, ordinal: usize) -> String {
        docker::logs(&self.name(ordinal), 100_000)
    }
}

/// Whether every node of `expect` (host id -> IP) lists exactly these host ids, Up and
/// Normal, at these addresses. The error says what is still wrong.
fn settled(expect: &BTreeMap<String, IpAddr>) -> Result<(), String> {
    for ip in expect.values() {
        let members = ring(*ip).ok_or_else(|| format!("{ip}: /ring does not answer"))?;
        let ids: BTreeSet<&str> = members.iter().map(|m| m.host_id.as_str()).collect();
        let want: BTreeSet<&str> = expect.keys().map(String::as_str).collect();
        if ids != want {
            return Err(format!("{ip} lists {ids:?}, want {want:?}"));
        }
        for m in &members {
            let addr = expect[&m.host_id].to_string();
            if m.address != addr || m.status != "Up" || m.state != "Normal" {
                return Err(format!(
                    "{ip} sees {} at {} {}/{}, want {addr} Up/Normal",
                    m.host_id, m.address, m.status, m.state
                ));
            }
        }
    }
    Ok(())
}

/// Waits until [`settled`]; returns how long it took.
fn wait_settled(what: &str, expect: &BTreeMap<String, IpAddr>) -> Duration {
    let t = Instant::now();
    tokio::task::block_in_place(|| {
        loop {
            match settled(expect) {
                Ok(()) => return t.elapsed(),
                Err(e) if t.elapsed() > SETTLE => {
                    panic!("{what}: not settled after {SETTLE:?}: {e}")
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    })
}

fn host_id_of(ip: IpAddr) -> String {
    shoal_tests::host_id(ip).unwrap_or_else(|| panic!("{ip}: no host id in /status"))
}

async fn session(ips: &[IpAddr]) -> Session {
    let mut builder = SessionBuilder::new().connection_timeout(Duration::from_secs(5));
    for ip in ips {
        builder = builder.known_node_addr(SocketAddr::new(*ip, CQL_PORT));
    }
    tokio::time::timeout(Duration::from_secs(30), builder.build())
        .await
        .expect("session build timed out")
        .unwrap_or_else(|e| panic!("connect to {ips:?}: {e}"))
}

/// A session whose every request is coordinated by `ip`.
async fn pinned(ip: IpAddr) -> Session {
    let addr = SocketAddr::new(ip, CQL_PORT);
    let filter = AllowListHostFilter::new([addr]).expect("allow list");
    SessionBuilder::new()
        .known_node_addr(addr)
        .host_filter(Arc::new(filter))
        .connection_timeout(Duration::from_secs(5))
        .build()
        .await
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"))
}

async fn prepare(s: &Session, cql: &str, cl: Consistency) -> PreparedStatement {
    let mut p = s
        .prepare(cql)
        .await
        .unwrap_or_else(|e| panic!("prepare {cql}: {e}"));
    p.set_consistency(cl);
    p.set_is_idempotent(true);
    p
}

/// Writes keys at QUORUM; returns the acknowledged ones and the number of failures.
async fn write(s: &Session, ks: &str, keys: std::ops::Range<i32>) -> (Vec<i32>, usize) {
    let insert = prepare(
        s,
        &format!("INSERT INTO {ks}.t (k, v) VALUES (?, ?)"),
        Consistency::Quorum,
    )
    .await;
    let mut acked = Vec::new();
    let mut failed = 0;
    for k in keys {
        match s.execute_unpaged(&insert, (k, format!("v{k}"))).await {
            Ok(_) => acked.push(k),
            Err(_) => failed += 1,
        }
    }
    (acked, failed)
}

/// Reads every key at `cl` and fails the test on any key missing, wrong or unreadable.
async fn check(s: &Session, ks: &str, keys: &[i32], cl: Consistency, what: &str) {
    let select = prepare(s, &format!("SELECT v FROM {ks}.t WHERE k = ?"), cl).await;
    let bad: Vec<String> = futures::stream::iter(keys.iter().copied())
        .map(|k| {
            let select = &select;
            async move {
                let rows = match s.execute_unpaged(select, (k,)).await {
                    Ok(r) => r,
                    Err(e) => return Some(format!("{k}: {e}")),
                };
                let rows = rows.into_rows_result().ok()?;
                match rows.maybe_first_row::<(String,)>() {
                    Ok(Some((v,))) if v == format!("v{k}") => None,
                    other => Some(format!("{k}: {other:?}")),
                }
            }
        })
        .buffer_unordered(16)
        .filter_map(|r| async move { r })
        .collect()
        .await;
    assert!(
        bad.is_empty(),
        "{what}: {} of {} acknowledged keys not read back at {cl:?}: {:?}",
        bad.len(),
        keys.len(),
        &bad[..bad.len().min(10)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statefulset_rehearsal_in_docker() {
    if !docker::available("k8s_rehearsal") {
        return;
    }
    tokio::task::block_in_place(docker::build_image);
    let mut set = StatefulSet::create();
    let prefix = set.prefix.clone();
    let total = Instant::now();

    // 1. Three pods at once; one ring from DNS alone.
    let mut ips: Vec<IpAddr> = (0..3).map(|i| set.ip(10 + i as u8)).collect();
    let t0 = Instant::now();
    let pods: Vec<(usize, IpAddr)> = ips.iter().copied().enumerate().collect();
    tokio::task::block_in_place(|| set.run_together(&pods));
    let started = t0.elapsed();
    let mut ready_at: [Option<Duration>; 3] = [None; 3];
    let mut saw_503 = [false; 3];
    tokio::task::block_in_place(|| {
        while ready_at.iter().any(Option::is_none) {
            assert!(
                t0.elapsed() < SETTLE,
                "pods not ready after {SETTLE:?}: {ready_at:?}"
            );
            for (i, ip) in ips.iter().enumerate() {
                match http_get(*ip, ADMIN_PORT, "/readyz") {
                    Ok((503, _)) => saw_503[i] = true,
                    Ok((200, _)) if ready_at[i].is_none() => {
                        ready_at[i] = Some(t0.elapsed());
                        let members = ring(*ip).unwrap_or_default();
                        let me = ip.to_string();
                        assert!(
                            members
                                .iter()
                                .any(|m| m.address == me && m.state == "Normal"),
                            "shoal-{i} is ready but not Normal in its own ring: {members:?}"
                        );
                        if i > 0 {
                            assert!(
                                members.iter().any(|m| m.address != me
                                    && m.state == "Normal"
                                    && m.status == "Up"),
                                "shoal-{i} is ready without a live member besides itself: {members:?}"
                            );
                        }
                    }
                    _ => {}
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    assert!(
        saw_503[1] && saw_503[2],
        "higher ordinals must answer /readyz 503 before they joined: {saw_503:?}"
    );
    let mut expect: BTreeMap<String, IpAddr> =
        ips.iter().map(|ip| (host_id_of(*ip), *ip)).collect();
    assert_eq!(expect.len(), 3, "three distinct host ids");
    wait_settled("ring of three", &expect);
    let formed = t0.elapsed();
    let ready: Vec<String> = ready_at
        .iter()
        .map(|d| format!("{:.1}", d.unwrap().as_secs_f64()))
        .collect();
    record(&format!(
        "k8s_rehearsal: 3 containers started together (docker run {:.1} s); ready at [{}] s; one ring of 3 Up/Normal on every node from DNS alone in {:.1} s",
        started.as_secs_f64(),
        ready.join(", "),
        formed.as_secs_f64()
    ));
    let host_ids: Vec<String> = ips.iter().map(|ip| host_id_of(*ip)).collect();

    // 2. A client: RF=3 keyspace, writes at QUORUM.
    let s = session(&ips).await;
    let ks = shoal_tests::unique_keyspace();
    common::exec(
        &s,
        format!(
            "CREATE KEYSPACE {ks} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 3}}"
        ),
    )
    .await;
    common::exec(
        &s,
        format!("CREATE TABLE {ks}.t (k int PRIMARY KEY, v text)"),
    )
    .await;
    s.await_schema_agreement().await.expect("schema agreement");
    let (mut acked, failed) = write(&s, &ks, 0..200).await;
    assert_eq!(failed, 0, "QUORUM writes failed on a healthy ring");
    check(&s, &ks, &acked, Consistency::All, "healthy ring").await;

    // 3. shoal-1 removed (no drain: docker rm -f) and recreated on its volume at a new IP.
    let old_ip = ips[1];
    let new_ip = set.ip(21);
    tokio::task::block_in_place(|| docker_ok(&["rm", "-f", &set.name(1)]));
    let (more, failed_down) = write(&s, &ks, 200..300).await;
    acked.extend(&more);
    let t = Instant::now();
    tokio::task::block_in_place(|| set.run_together(&[(1, new_ip)]));
    ips[1] = new_ip;
    expect.insert(host_ids[1].clone(), new_ip);
    wait_settled("shoal-1 back at a new IP", &expect);
    let rejoin = t.elapsed();
    assert_eq!(host_id_of(new_ip), host_ids[1], "shoal-1 kept its host id");
    for o in [0, 2] {
        let logs = set.logs(o);
        assert!(
            logs.contains("node changed address") && logs.contains(&new_ip.to_string()),
            "shoal-{o} did not log shoal-1's address change to {new_ip}"
        );
    }
    record(&format!(
        "k8s_rehearsal: shoal-1 killed (docker rm -f) and recreated at {new_ip} (was {old_ip}): same host id, seen at its new address by every node in {:.1} s; {} QUORUM writes while it was gone, {} failed",
        rejoin.as_secs_f64(),
        more.len() + failed_down,
        failed_down
    ));
    // Its own data survived on the volume: coordinated by shoal-1 at ONE, the local
    // replica answers.
    let one = pinned(new_ip).await;
    check(
        &one,
        &ks,
        &acked[..200],
        Consistency::One,
        "shoal-1's own data",
    )
    .await;
    drop(one);
    drop(s);
    let s = session(&ips).await;
    check(
        &s,
        &ks,
        &acked,
        Consistency::Quorum,
        "after the address change",
    )
    .await;
    check(
        &s,
        &ks,
        &acked,
        Consistency::All,
        "after the address change",
    )
    .await;
    drop(s);

    // 4. shoal-0 and shoal-2 swap IPs.
    let t = Instant::now();
    let drains = tokio::task::block_in_place(|| set.stop_together(&[0, 2]));
    tokio::task::block_in_place(|| {
        docker_ok(&["rm", &set.name(0), &set.name(2)]);
        set.run_together(&[(0, ips[2]), (2, ips[0])]);
    });
    ips.swap(0, 2);
    expect.insert(host_ids[0].clone(), ips[0]);
    expect.insert(host_ids[2].clone(), ips[2]);
    let healed = wait_settled("ring after the IP swap", &expect);
    let swap = t.elapsed();
    for (o, ip) in ips.iter().enumerate() {
        assert_eq!(host_id_of(*ip), host_ids[o], "shoal-{o} kept its host id");
    }
    let s = session(&ips).await;
    check(&s, &ks, &acked, Consistency::All, "after the IP swap").await;
    drop(s);
    record(&format!(
        "k8s_rehearsal: shoal-0 and shoal-2 swapped IPs: drained in {:.1} s / {:.1} s, whole swap {:.1} s, ring healed {:.1} s after the restarts were issued; reads at ALL ok",
        drains[0].as_secs_f64(),
        drains[1].as_secs_f64(),
        swap.as_secs_f64(),
        healed.as_secs_f64()
    ));

    // 5. SIGTERM drains under QUORUM write load; nothing acknowledged is lost.
    let s = Arc::new(session(&ips).await);
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (s, ks, stop) = (s.clone(), ks.clone(), stop.clone());
        tokio::spawn(async move {
            let insert = prepare(
                &s,
                &format!("INSERT INTO {ks}.t (k, v) VALUES (?, ?)"),
                Consistency::Quorum,
            )
            .await;
            let (mut acked, mut failed) = (Vec::new(), 0usize);
            let mut k = 100_000;
            while !stop.load(Ordering::Relaxed) {
                match s.execute_unpaged(&insert, (k, format!("v{k}"))).await {
                    Ok(_) => acked.push(k),
                    Err(_) => failed += 1,
                }
                k += 1;
            }
            (acked, failed)
        })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let drain = tokio::task::block_in_place(|| set.stop_together(&[1]))[0];
    assert!(
        set.logs(1).contains("drained"),
        "shoal-1 did not log the end of its drain:\n{}",
        docker::logs(&set.name(1), 30)
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    tokio::task::block_in_place(|| docker_ok(&["start", &set.name(1)]));
    let restarted = wait_settled("shoal-1 back after its drain", &expect);
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    let (load_acked, load_failed) = writer.await.expect("writer task");
    assert!(
        load_acked.len() > 100,
        "the writer barely wrote: {} acknowledged, {load_failed} failed",
        load_acked.len()
    );
    drop(s);
    let s = session(&ips).await;
    check(
        &s,
        &ks,
        &load_acked,
        Consistency::All,
        "writes during the drain",
    )
    .await;
    check(&s, &ks, &acked, Consistency::All, "earlier writes").await;
    record(&format!(
        "k8s_rehearsal: SIGTERM under QUORUM load: shoal-1 drained and exited 0 in {:.1} s (drain delay {DRAIN_DELAY_MS} ms, grace {GRACE_SECS} s); back Up/Normal {:.1} s after docker start; {} writes acknowledged, {} failed, all acknowledged readable at ALL",
        drain.as_secs_f64(),
        restarted.as_secs_f64(),
        load_acked.len(),
        load_failed
    ));
    drop(s);

    // The last incarnation of every pod: no error, no panic; warnings are shown.
    for o in 0..3 {
        let logs = set.logs(o);
        let errors: Vec<&str> = logs
            .lines()
            .filter(|l| l.contains(" ERROR ") || l.contains("panicked"))
            .collect();
        assert!(errors.is_empty(), "shoal-{o} logged errors: {errors:#?}");
        for w in logs.lines().filter(|l| l.contains(" WARN ")) {
            println!("shoal-{o} warned: {w}");
        }
    }

    drop(set);
    Resources::assert_gone(&prefix);
    record(&format!(
        "k8s_rehearsal: whole rehearsal {:.0} s (image build excluded)",
        total.elapsed().as_secs_f64()
    ));
}
