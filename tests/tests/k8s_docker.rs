//! The `shoal:dev` image (docker/build.sh) on a user-defined Docker network: three
//! containers shoal-0..2 sharing a network alias, as pods behind a headless Service
//! (kubernetes.md §4b). Without gossip yet, each container is checked on its own: it starts,
//! is ready, serves CQL on its own IP, runs as uid 999, resolves the alias to its peers with
//! the static binary's in-process resolver, and exits 0 on SIGTERM inside the grace period.
//!
//! Only the containers this test created are ever contacted. Everything it created
//! (containers, network, volumes) is removed at the end, also on failure.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use scylla::client::session_builder::SessionBuilder;
use shoal_tests::workspace_dir;

const IMAGE: &str = "shoal:dev";
const GRACE_SECS: u64 = 60;

fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("run docker")
}

fn docker_ok(args: &[&str]) -> String {
    let out = docker(args);
    assert!(
        out.status.success(),
        "docker {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// True when a Docker engine answers. Without one the test is skipped loudly, except in CI.
fn docker_available() -> bool {
    let ok = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        let msg = "*** k8s_docker: NO DOCKER ENGINE RUNNING: the image test is SKIPPED ***";
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{msg} (CI=true requires Docker)");
        }
        eprintln!("\n{msg}\n");
    }
    ok
}

/// Removes every object the test created, whatever happened.
struct Cleanup {
    prefix: String,
    containers: Vec<String>,
    volumes: Vec<String>,
    network: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for c in &self.containers {
            let _ = docker(&["rm", "-f", "-v", c]);
        }
        for v in &self.volumes {
            let _ = docker(&["volume", "rm", "-f", v]);
        }
        let _ = docker(&["network", "rm", &self.network]);
    }
}

fn http_get(ip: IpAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&SocketAddr::new(ip, 8080), Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {ip}\r\n\r\n")?;
    let mut buf = String::new();
    s.read_to_string(&mut buf)?;
    let status = buf
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((
        status,
        buf.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default(),
    ))
}

fn wait_until<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_runs_three_containers_behind_one_alias() {
    if !docker_available() {
        return;
    }
    let build = Command::new(workspace_dir().join("docker/build.sh"))
        .env("SHOAL_IMAGE", IMAGE)
        .status()
        .expect("run docker/build.sh");
    assert!(build.success(), "docker/build.sh failed");

    let size: u64 = docker_ok(&["image", "inspect", IMAGE, "--format", "{{.Size}}"])
        .parse()
        .unwrap();
    assert!(
        size < 30 * 1024 * 1024,
        "image is {size} bytes (budget 30 MiB)"
    );
    assert_eq!(
        docker_ok(&["image", "inspect", IMAGE, "--format", "{{.Config.User}}"]),
        "999:999"
    );

    let prefix = format!("shoal-k8stest-{}", std::process::id());
    let mut cleanup = Cleanup {
        prefix: prefix.clone(),
        containers: Vec::new(),
        volumes: Vec::new(),
        network: format!("{prefix}-net"),
    };
    docker_ok(&["network", "create", &cleanup.network]);
    for i in 0..3 {
        let name = format!("{prefix}-shoal-{i}");
        let volume = format!("{prefix}-data-{i}");
        cleanup.containers.push(name.clone());
        cleanup.volumes.push(volume.clone());
        let network = cleanup.network.clone();
        docker_ok(&[
            "run",
            "-d",
            "--name",
            &name,
            "--hostname",
            &format!("shoal-{i}"),
            "--network",
            &network,
            "--network-alias",
            "shoal-peers",
            "-v",
            &format!("{volume}:/var/lib/shoal"),
            "-e",
            "CASSANDRA_SEEDS=shoal-peers",
            "-e",
            "CASSANDRA_CLUSTER_NAME=k8stest",
            "-e",
            "SHOAL_DRAIN_DELAY_MS=1000",
            "--stop-timeout",
            &GRACE_SECS.to_string(),
            IMAGE,
        ]);
    }
    let ips: Vec<IpAddr> = cleanup
        .containers
        .iter()
        .map(|c| {
            docker_ok(&[
                "inspect",
                c,
                "--format",
                "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
            ])
            .parse()
            .unwrap_or_else(|e| panic!("{c} has no IP: {e}"))
        })
        .collect();

    for (i, ip) in ips.iter().enumerate() {
        let name = &cleanup.containers[i];
        wait_until(&format!("{name} /readyz"), Duration::from_secs(60), || {
            matches!(http_get(*ip, "/readyz"), Ok((200, _))).then_some(())
        });
        let (_, status) = http_get(*ip, "/status").expect("/status");
        assert!(
            status.contains("\"uid\":999"),
            "{name} does not run as uid 999: {status}"
        );
        assert!(
            status.contains(&format!("\"hostname\":\"shoal-{i}\"")),
            "{status}"
        );
        assert!(status.contains(&format!("\"ordinal\":{i}")), "{status}");
        assert!(
            status.contains(&format!("\"broadcast\":\"{ip}\"")),
            "auto address is not the container IP: {status}"
        );
        // The alias resolves to every peer, through the static binary's own resolver.
        let others: Vec<String> = ips
            .iter()
            .filter(|o| *o != ip)
            .map(|o| format!("\"{o}:7000\""))
            .collect();
        wait_until(
            &format!("{name} to discover its peers"),
            Duration::from_secs(30),
            || {
                let (_, s) = http_get(*ip, "/status").ok()?;
                others.iter().all(|o| s.contains(o.as_str())).then_some(())
            },
        );

        let session = SessionBuilder::new()
            .known_node_addr(SocketAddr::new(*ip, 9042))
            .connection_timeout(Duration::from_secs(5))
            .build()
            .await
            .unwrap_or_else(|e| panic!("CQL on {name} ({ip}): {e}"));
        let rows = session
            .query_unpaged("SELECT rpc_address FROM system.local", ())
            .await
            .expect("query system.local")
            .into_rows_result()
            .expect("rows");
        let (rpc,): (IpAddr,) = rows.single_row().expect("one row");
        assert_eq!(rpc, *ip, "{name} advertises {rpc} to clients");
    }

    for name in &cleanup.containers {
        let t = Instant::now();
        docker_ok(&["stop", "-t", &GRACE_SECS.to_string(), name]);
        let took = t.elapsed();
        let code = docker_ok(&["inspect", name, "--format", "{{.State.ExitCode}}"]);
        assert_eq!(
            code,
            "0",
            "{name} exited with {code}:\n{}",
            docker_ok(&["logs", "--tail", "30", name])
        );
        assert!(
            took < Duration::from_secs(GRACE_SECS - 10),
            "{name} took {took:?} to stop"
        );
        println!("{name}: SIGTERM -> exit 0 in {took:?}");
    }

    let prefix = cleanup.prefix.clone();
    drop(cleanup);
    let left = docker_ok(&[
        "ps",
        "-a",
        "--filter",
        &format!("name={prefix}"),
        "--format",
        "{{.Names}}",
    ]);
    assert!(left.is_empty(), "containers left behind: {left}");
    let left = docker_ok(&[
        "volume",
        "ls",
        "--filter",
        &format!("name={prefix}"),
        "--format",
        "{{.Name}}",
    ]);
    assert!(left.is_empty(), "volumes left behind: {left}");
    let left = docker_ok(&[
        "network",
        "ls",
        "--filter",
        &format!("name={prefix}"),
        "--format",
        "{{.Name}}",
    ]);
    assert!(left.is_empty(), "networks left behind: {left}");
}
