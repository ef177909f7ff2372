//! Helpers for end-to-end tests: start real `shoal` processes on their own loopback
//! addresses and wait for them.
//!
//! Every node gets its own `127.X.Y.Z` address (X in 100..=199) and the default ports, so
//! tests in parallel threads and in parallel test binaries never fight over a port, and
//! the nodes look exactly like a default install to the clients.
//!
//! `SHOAL_TEST_TARGET=HOST:PORT` points every [`Node::start`] at an already-running server
//! (for example a real Apache Cassandra) so the suite itself can be checked against the
//! reference implementation. Tests that must kill or restart the process skip in that mode.

pub mod docker;
pub mod linearizability;

use std::fs::{self, File};
use std::hash::{BuildHasher, Hasher};
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub const CQL_PORT: u16 = 9042;
pub const STORAGE_PORT: u16 = 7000;
pub const ADMIN_PORT: u16 = 8080;

/// How long a node may take to accept CQL connections before the test gives up.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The workspace root (the parent of this crate's manifest directory).
pub fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The external server named by `SHOAL_TEST_TARGET`, if any.
pub fn external_target() -> Option<SocketAddr> {
    let target = std::env::var("SHOAL_TEST_TARGET").ok()?;
    let target = target.trim();
    if target.is_empty() {
        return None;
    }
    let addr = target
        .to_socket_addrs()
        .unwrap_or_else(|e| panic!("SHOAL_TEST_TARGET={target:?} is not HOST:PORT: {e}"))
        .next()
        .unwrap_or_else(|| panic!("SHOAL_TEST_TARGET={target:?} resolves to nothing"));
    Some(addr)
}

/// Path of the `shoal` binary: `SHOAL_BIN`, else `<workspace>/target/debug/shoal`, built once
/// per test process if it is missing. Cargo's own build-directory lock serialises builds
/// started by parallel test binaries, so only the in-process race needs a guard.
pub fn shoal_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Ok(bin) = std::env::var("SHOAL_BIN") {
            let bin = PathBuf::from(bin);
            assert!(bin.is_file(), "SHOAL_BIN={} does not exist", bin.display());
            return bin;
        }
        let target_dir = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace_dir().join("target"));
        let bin = target_dir.join("debug").join("shoal");
        if !bin.is_file() {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let status = Command::new(cargo)
                .args(["build", "-p", "shoal-node", "--bin", "shoal"])
                .current_dir(workspace_dir())
                .status()
                .expect("failed to run cargo build for the shoal binary");
            assert!(
                status.success(),
                "cargo build -p shoal-node --bin shoal failed"
            );
        }
        assert!(bin.is_file(), "{} missing after build", bin.display());
        bin
    })
    .clone()
}

/// A random-looking lower-case name that is a valid unquoted CQL identifier.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u32(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    format!("{prefix}_{:016x}", h.finish())
}

/// A fresh keyspace name, so tests sharing one server never see each other's data.
pub fn unique_keyspace() -> String {
    unique_name("ks")
}

/// Picks an unused `127.X.Y.Z` for this process. X and Y come from the pid so that
/// concurrent test binaries land in different /16s; Z counts nodes within the process.
pub fn allocate_address() -> Ipv4Addr {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let pid = std::process::id();
    let x = 100 + (pid % 100) as u8;
    let y = ((pid / 100) % 256) as u8;
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        assert!(n < 254 * 4, "ran out of loopback addresses");
        let ip = Ipv4Addr::new(127, x, y.wrapping_add((n / 254) as u8), (n % 254 + 1) as u8);
        // A leftover process from an earlier run may still own the address.
        if TcpListener::bind((ip, CQL_PORT)).is_ok() {
            return ip;
        }
    }
}

/// How to start a node.
#[derive(Debug, Clone, Default)]
pub struct NodeOptions {
    /// Use this data directory instead of a fresh temporary one.
    pub data_dir: Option<PathBuf>,
    /// cassandra.yaml-style text written to a file and passed with `--config`.
    pub yaml: Option<String>,
    /// More command-line arguments, appended after the harness's own.
    pub extra_args: Vec<String>,
    /// Use this loopback address instead of allocating one.
    pub address: Option<Ipv4Addr>,
    /// Environment variables set for the process (e.g. `CASSANDRA_DC`).
    pub env: Vec<(String, String)>,
}

impl NodeOptions {
    pub fn yaml(yaml: impl Into<String>) -> Self {
        NodeOptions {
            yaml: Some(yaml.into()),
            ..Default::default()
        }
    }
}

/// A running `shoal` process (or, with `SHOAL_TEST_TARGET`, an external server).
pub struct Node {
    child: Option<Child>,
    external: bool,
    addr: SocketAddr,
    args: Vec<String>,
    env: Vec<(String, String)>,
    data_dir: PathBuf,
    stderr_path: PathBuf,
    last_ready: Duration,
    spawned: Option<Instant>,
    _tmp: Option<tempfile::TempDir>,
}

impl Node {
    /// Starts a node and waits until its CQL port accepts connections.
    pub fn start(opts: NodeOptions) -> Node {
        let mut node = Node::spawn(opts);
        if !node.external {
            node.wait_ready();
        }
        node
    }

    /// Starts a node without waiting for it (see [`Node::wait_ready`]).
    pub fn spawn(opts: NodeOptions) -> Node {
        if let Some(addr) = external_target() {
            return Node {
                child: None,
                external: true,
                addr,
                args: Vec::new(),
                env: Vec::new(),
                data_dir: PathBuf::new(),
                stderr_path: PathBuf::new(),
                last_ready: Duration::ZERO,
                spawned: None,
                _tmp: None,
            };
        }
        let tmp = tempfile::Builder::new()
            .prefix("shoal-test-")
            .tempdir()
            .expect("create temp dir");
        let data_dir = opts
            .data_dir
            .clone()
            .unwrap_or_else(|| tmp.path().join("data"));
        fs::create_dir_all(&data_dir).expect("create data dir");
        let ip = opts.address.unwrap_or_else(allocate_address);
        let mut args: Vec<String> = vec![
            "--data-dir".into(),
            data_dir.display().to_string(),
            "--listen-address".into(),
            ip.to_string(),
            "--rpc-address".into(),
            ip.to_string(),
            "--cql-port".into(),
            CQL_PORT.to_string(),
            "--storage-port".into(),
            STORAGE_PORT.to_string(),
            "--admin-port".into(),
            ADMIN_PORT.to_string(),
        ];
        if let Some(yaml) = &opts.yaml {
            let path = tmp.path().join("shoal.yaml");
            fs::write(&path, yaml).expect("write config");
            args.push("--config".into());
            args.push(path.display().to_string());
        }
        args.extend(opts.extra_args.iter().cloned());
        let mut node = Node {
            child: None,
            external: false,
            addr: SocketAddr::new(IpAddr::V4(ip), CQL_PORT),
            args,
            env: opts.env.clone(),
            data_dir,
            stderr_path: tmp.path().join("stderr.log"),
            last_ready: Duration::ZERO,
            spawned: None,
            _tmp: Some(tmp),
        };
        node.spawn_process();
        node
    }

    /// Starts a node with default options.
    pub fn start_default() -> Node {
        Node::start(NodeOptions::default())
    }

    fn spawn_and_wait(&mut self) {
        self.spawn_process();
        self.wait_ready();
    }

    fn spawn_process(&mut self) {
        // Append, so the log of an earlier incarnation survives a restart for post-mortems.
        let mut stderr = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.stderr_path)
            .expect("open stderr log");
        writeln!(stderr, "---- shoal {} ----", self.args.join(" ")).ok();
        let started = Instant::now();
        let child = Command::new(shoal_bin())
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(stderr))
            .spawn()
            .expect("spawn shoal");
        self.child = Some(child);
        self.spawned = Some(started);
    }

    /// Waits until the CQL port of a spawned node accepts connections.
    pub fn wait_ready(&mut self) {
        let started = self.spawned.unwrap_or_else(Instant::now);
        loop {
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok() {
                self.last_ready = started.elapsed();
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                panic!(
                    "shoal exited with {status} before accepting CQL on {}\n--- stderr tail ---\n{}",
                    self.addr,
                    self.stderr_tail()
                );
            }
            if started.elapsed() > START_TIMEOUT {
                let tail = self.stderr_tail();
                self.kill9();
                panic!(
                    "shoal did not accept CQL on {} within {START_TIMEOUT:?}\n--- stderr tail ---\n{tail}",
                    self.addr
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// True when this handle points at a server the harness does not control.
    pub fn is_external(&self) -> bool {
        self.external
    }

    /// The CQL endpoint (`IP:port`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn ip(&self) -> IpAddr {
        self.addr.ip()
    }

    pub fn cql_port(&self) -> u16 {
        self.addr.port()
    }

    /// `IP:port`, as clients want it.
    pub fn contact_point(&self) -> String {
        self.addr.to_string()
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Time from spawning the process to the CQL port accepting, for the last (re)start.
    pub fn last_start_to_ready(&self) -> Duration {
        self.last_ready
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    fn assert_controllable(&self, what: &str) {
        assert!(
            !self.external,
            "{what} needs a shoal process started by the harness (SHOAL_TEST_TARGET is set)"
        );
    }

    /// Simulates a crash: SIGKILL, then reap.
    pub fn kill9(&mut self) {
        self.assert_controllable("kill9");
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Clean shutdown: SIGTERM, then wait (up to 30 s, after which it is killed and this panics).
    pub fn terminate(&mut self) -> ExitStatus {
        self.assert_controllable("terminate");
        let mut child = self.child.take().expect("node is not running");
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().expect("wait for shoal") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "shoal ignored SIGTERM for 30 s\n--- stderr tail ---\n{}",
                    self.stderr_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the process again on the same address and data directory (killing it first if
    /// it still runs). Returns the time until the CQL port accepted.
    pub fn restart(&mut self) -> Duration {
        self.assert_controllable("restart");
        if self.child.is_some() {
            self.kill9();
        }
        self.spawn_and_wait();
        self.last_ready
    }

    /// The last ~60 lines the node wrote to stderr.
    pub fn stderr_tail(&self) -> String {
        if self.external {
            return String::from("(external server: no stderr)");
        }
        let Ok(mut f) = File::open(&self.stderr_path) else {
            return String::from("(no stderr captured)");
        };
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let _ = f.seek(SeekFrom::Start(len.saturating_sub(16 * 1024)));
        let mut buf = Vec::new();
        let _ = f.read_to_end(&mut buf);
        let text = String::from_utf8_lossy(&buf);
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One HTTP GET to `ip:port`; returns (status, body).
pub fn http_get(ip: IpAddr, port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&SocketAddr::new(ip, port), Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {ip}\r\n\r\n")?;
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

/// One member of a node's `/ring` answer.
#[derive(Clone, Debug, PartialEq)]
pub struct RingMember {
    pub host_id: String,
    pub address: String,
    pub status: String,
    pub state: String,
    pub tokens: u64,
    pub owns: Option<f64>,
}

/// The members `ip`'s admin endpoint lists in `/ring` (`None` if it does not answer).
pub fn ring(ip: IpAddr) -> Option<Vec<RingMember>> {
    let (status, body) = http_get(ip, ADMIN_PORT, "/ring").ok()?;
    if status != 200 {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    let s = |n: &serde_json::Value, k: &str| n[k].as_str().unwrap_or_default().to_string();
    Some(
        v["nodes"]
            .as_array()?
            .iter()
            .map(|n| RingMember {
                host_id: s(n, "host_id"),
                address: s(n, "address"),
                status: s(n, "status"),
                state: s(n, "state"),
                tokens: n["tokens"].as_u64().unwrap_or(0),
                owns: n["owns"].as_f64(),
            })
            .collect(),
    )
}

/// The host id a node reports in `/status`.
pub fn host_id(ip: IpAddr) -> Option<String> {
    let (_, body) = http_get(ip, ADMIN_PORT, "/status").ok()?;
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    v["host_id"].as_str().map(str::to_string)
}

/// Every sample of a node's `/metrics` (Prometheus text), keyed by the series as written,
/// labels included: `shoal_client_requests_total{op="EXECUTE",cl="ONE"}`.
pub fn metrics(ip: IpAddr) -> Option<std::collections::BTreeMap<String, f64>> {
    let (status, body) = http_get(ip, ADMIN_PORT, "/metrics").ok()?;
    if status != 200 {
        return None;
    }
    Some(
        body.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let (k, v) = l.rsplit_once(' ')?;
                Some((k.to_string(), v.parse().ok()?))
            })
            .collect(),
    )
}

/// The sum of every series of a node's `/metrics` whose name (with labels) starts with
/// `prefix`; 0 when none does, `None` when the endpoint does not answer.
pub fn metric_sum(ip: IpAddr, prefix: &str) -> Option<f64> {
    Some(
        metrics(ip)?
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(_, v)| v)
            .sum(),
    )
}

/// Polls `f` every 200 ms until it returns `Some`, or panics with `what` after `timeout`.
pub fn wait_until<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Several nodes on distinct loopback addresses (same ports), all seeded with the first
/// node's address, forming one cluster.
pub struct Cluster {
    pub nodes: Vec<Node>,
}

impl Cluster {
    fn options(n: usize, extra: &[&str]) -> Vec<NodeOptions> {
        Cluster::options_with(n, extra, None)
    }

    fn options_with(n: usize, extra: &[&str], yaml: Option<&str>) -> Vec<NodeOptions> {
        let ips: Vec<Ipv4Addr> = (0..n).map(|_| allocate_address()).collect();
        ips.iter()
            .map(|ip| {
                let mut extra_args = vec!["--seeds".to_string(), ips[0].to_string()];
                extra_args.extend(extra.iter().map(|s| s.to_string()));
                NodeOptions {
                    address: Some(*ip),
                    extra_args,
                    yaml: yaml.map(str::to_string),
                    ..Default::default()
                }
            })
            .collect()
    }

    /// Starts one node per `(dc, rack)` of `layout`, one after the other, with
    /// GossipingPropertyFileSnitch and `CASSANDRA_DC`/`CASSANDRA_RACK` set as the official
    /// image does. The first node of every datacenter is a seed; the very first node lists
    /// only itself, so it founds the ring (a node that lists other seeds waits for a member
    /// rather than founding: kubernetes.md §3 rule 4). Waits for convergence.
    pub fn start_in_dcs(layout: &[(&str, &str)], extra: &[&str], yaml: Option<&str>) -> Cluster {
        let mut opts = Cluster::options_with(layout.len(), extra, yaml);
        let mut seeds: Vec<String> = Vec::new();
        for (i, (dc, _)) in layout.iter().enumerate() {
            if !layout[..i].iter().any(|(d, _)| d == dc) {
                seeds.push(opts[i].address.expect("allocated").to_string());
            }
        }
        for (i, (o, (dc, rack))) in opts.iter_mut().zip(layout).enumerate() {
            if i > 0 {
                o.extra_args[1] = seeds.join(",");
            }
            o.env = vec![
                ("CASSANDRA_DC".into(), dc.to_string()),
                ("CASSANDRA_RACK".into(), rack.to_string()),
                (
                    "CASSANDRA_ENDPOINT_SNITCH".into(),
                    "GossipingPropertyFileSnitch".into(),
                ),
            ];
        }
        let nodes = opts.into_iter().map(Node::start).collect();
        let c = Cluster { nodes };
        c.wait_converged(Duration::from_secs(60));
        c
    }

    /// Like [`Cluster::start`], every node also reading the cassandra.yaml text `yaml`.
    pub fn start_with_yaml(n: usize, extra: &[&str], yaml: &str) -> Cluster {
        let nodes = Cluster::options_with(n, extra, Some(yaml))
            .into_iter()
            .map(Node::start)
            .collect();
        let c = Cluster { nodes };
        c.wait_converged(Duration::from_secs(60));
        c
    }

    /// Starts `n` nodes one after the other (each waits for CQL before the next starts),
    /// then waits until every node sees every other one up.
    pub fn start(n: usize, extra: &[&str]) -> Cluster {
        let nodes = Cluster::options(n, extra)
            .into_iter()
            .map(Node::start)
            .collect();
        let c = Cluster { nodes };
        c.wait_converged(Duration::from_secs(60));
        c
    }

    /// Starts `n` nodes at the same time, then waits until every node sees every other up.
    pub fn start_simultaneously(n: usize, extra: &[&str]) -> Cluster {
        let mut nodes: Vec<Node> = Cluster::options(n, extra)
            .into_iter()
            .map(Node::spawn)
            .collect();
        for node in &mut nodes {
            node.wait_ready();
        }
        let c = Cluster { nodes };
        c.wait_converged(Duration::from_secs(60));
        c
    }

    /// The host id of every node, in node order.
    pub fn host_ids(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| {
                wait_until("the node's host id", Duration::from_secs(10), || {
                    host_id(n.ip())
                })
            })
            .collect()
    }

    /// Waits until every running node's `/ring` lists exactly the cluster's host ids, all Up
    /// and Normal.
    pub fn wait_converged(&self, timeout: Duration) {
        let mut ids = self.host_ids();
        ids.sort();
        let deadline = Instant::now() + timeout;
        loop {
            let views: Vec<Option<Vec<RingMember>>> =
                self.nodes.iter().map(|n| ring(n.ip())).collect();
            let ok = views.iter().all(|v| {
                v.as_ref().is_some_and(|members| {
                    let mut seen: Vec<String> = members.iter().map(|m| m.host_id.clone()).collect();
                    seen.sort();
                    seen == ids
                        && members
                            .iter()
                            .all(|m| m.status == "Up" && m.state == "Normal")
                })
            });
            if ok {
                return;
            }
            if Instant::now() > deadline {
                let tails: Vec<String> = self.nodes.iter().map(|n| n.stderr_tail()).collect();
                panic!(
                    "the cluster did not converge within {timeout:?}\nhost ids {ids:?}\nviews {views:#?}\n--- stderr tails ---\n{}",
                    tails.join("\n-----\n")
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

/// Prints why a test is skipped against an external server and returns from it.
#[macro_export]
macro_rules! skip_if_external {
    ($node:expr, $why:expr) => {
        if $node.is_external() {
            eprintln!("SKIPPED against SHOAL_TEST_TARGET: {}", $why);
            return;
        }
    };
}

/// Prints a measurement and, when `SHOAL_TEST_REPORT` names a file, appends it there so
/// `scripts/test.sh` can show it even though cargo captures the output of passing tests.
pub fn record(line: &str) {
    println!("{line}");
    if let Ok(path) = std::env::var("SHOAL_TEST_REPORT")
        && let Ok(mut f) = fs::OpenOptions::new().create(true).append(true).open(path)
    {
        let _ = writeln!(f, "{line}");
    }
}

/// True (after saying so) when the tests run against `SHOAL_TEST_TARGET`: multi-node tests
/// need a cluster of shoal processes of their own.
pub fn skip_without_cluster() -> bool {
    if external_target().is_some() {
        eprintln!("SKIPPED against SHOAL_TEST_TARGET: needs a cluster of shoal processes");
        return true;
    }
    false
}
