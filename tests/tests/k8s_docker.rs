//! The `shoal:dev` image (docker/build.sh) on a user-defined Docker network: three
//! containers shoal-0..2 sharing a network alias, as pods behind a headless Service
//! (kubernetes.md §4b). Each container is checked on its own: it starts, is ready, serves
//! CQL on its own IP, runs as uid 999, resolves the alias to its peers with the static
//! binary's in-process resolver, and exits 0 on SIGTERM inside the grace period. The cluster
//! behaviour (one ring from DNS, address changes, drains under load) is `k8s_rehearsal`.
//!
//! Only the containers this test created are ever contacted. Everything it created
//! (containers, network, volumes) is removed at the end, also on failure.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use scylla::client::session_builder::SessionBuilder;
use scylla::policies::host_filter::AllowListHostFilter;
use shoal_tests::docker::{self, IMAGE, Resources, docker_ok};
use shoal_tests::{ADMIN_PORT, http_get, wait_until};

const GRACE_SECS: u64 = 60;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_runs_three_containers_behind_one_alias() {
    if !docker::available("k8s_docker") {
        return;
    }
    docker::build_image();

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
    let mut cleanup = Resources::default();
    let network = format!("{prefix}-net");
    cleanup.network(&network);
    docker_ok(&["network", "create", &network]);
    for i in 0..3 {
        let name = format!("{prefix}-shoal-{i}");
        let volume = format!("{prefix}-data-{i}");
        cleanup.container(&name);
        cleanup.volume(&volume);
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
        .map(|c| docker::container_ip(c, &network))
        .collect();

    for (i, ip) in ips.iter().enumerate() {
        let name = &cleanup.containers[i];
        wait_until(&format!("{name} /readyz"), Duration::from_secs(60), || {
            matches!(http_get(*ip, ADMIN_PORT, "/readyz"), Ok((200, _))).then_some(())
        });
        let (_, status) = http_get(*ip, ADMIN_PORT, "/status").expect("/status");
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
                let (_, s) = http_get(*ip, ADMIN_PORT, "/status").ok()?;
                others.iter().all(|o| s.contains(o.as_str())).then_some(())
            },
        );

        // The nodes form one cluster: without the filter the driver would send the query
        // to any of them.
        let addr = SocketAddr::new(*ip, 9042);
        let session = SessionBuilder::new()
            .known_node_addr(addr)
            .host_filter(Arc::new(
                AllowListHostFilter::new([addr]).expect("allow list"),
            ))
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
        let code = docker::exit_code(name);
        assert_eq!(
            code,
            0,
            "{name} exited with {code}:\n{}",
            docker::logs(name, 30)
        );
        assert!(
            took < Duration::from_secs(GRACE_SECS - 10),
            "{name} took {took:?} to stop"
        );
        println!("{name}: SIGTERM -> exit 0 in {took:?}");
    }

    drop(cleanup);
    Resources::assert_gone(&prefix);
}
