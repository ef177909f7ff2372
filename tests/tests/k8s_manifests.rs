//! The Kubernetes manifests: every kustomize overlay renders and passes strict schema
//! validation for several Kubernetes versions (scripts/k8s-validate.sh), encodes the rules
//! of kubernetes.md §3, and agrees with the binary: its default ports, its probe paths, and
//! the ConfigMap's shoal.yaml it is started with.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use shoal_tests::{allocate_address, shoal_bin, workspace_dir};

const OVERLAYS: [&str; 3] = [
    "k8s_manifests_base",
    "k8s_manifests_overlays_dev",
    "k8s_manifests_overlays_prod",
];

fn kubectl_available() -> bool {
    let ok = Command::new("kubectl")
        .args(["version", "--client"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        let msg =
            "*** k8s_manifests: kubectl NOT FOUND: manifest rendering/validation is SKIPPED ***";
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{msg} (CI=true: .ci/run must install kubectl)");
        }
        eprintln!("\n{msg}\n");
    }
    ok
}

/// Renders and validates every overlay; returns the flat `path=value` summary.
fn validated_summary() -> BTreeMap<String, String> {
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("summary.txt");
    let out = Command::new(workspace_dir().join("scripts/k8s-validate.sh"))
        .arg(&summary)
        .output()
        .expect("run scripts/k8s-validate.sh");
    assert!(
        out.status.success(),
        "scripts/k8s-validate.sh failed\n--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(&summary)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Values of keys `<overlay>.statefulsets[<name>].<field>` for every StatefulSet.
fn per_sts<'a>(
    s: &'a BTreeMap<String, String>,
    overlay: &str,
    field: &str,
) -> Vec<(&'a str, &'a str)> {
    let prefix = format!("{overlay}.statefulsets[");
    s.iter()
        .filter_map(|(k, v)| {
            let rest = k.strip_prefix(&prefix)?;
            let (name, f) = rest.split_once("].")?;
            (f == field).then_some((name, v.as_str()))
        })
        .collect()
}

fn get<'a>(s: &'a BTreeMap<String, String>, key: &str) -> &'a str {
    s.get(key)
        .map(String::as_str)
        .unwrap_or_else(|| panic!("{key} missing from the rendered manifests"))
}

#[test]
fn overlays_render_validate_and_match_the_binary() {
    if !kubectl_available() {
        return;
    }
    let s = validated_summary();
    for overlay in OVERLAYS {
        let sts = per_sts(&s, overlay, "name");
        assert!(!sts.is_empty(), "{overlay}: no StatefulSet");
        for field in ["ports.cql", "ports.internode", "ports.admin"] {
            let want = match field {
                "ports.cql" => "9042",
                "ports.internode" => "7000",
                _ => "8080",
            };
            for (name, v) in per_sts(&s, overlay, field) {
                assert_eq!(v, want, "{overlay}/{name} {field}");
            }
        }
        for (probe, path) in [
            ("startupProbe", "/startupz"),
            ("livenessProbe", "/livez"),
            ("readinessProbe", "/readyz"),
            ("preStop", "/drain"),
        ] {
            for (name, v) in per_sts(&s, overlay, &format!("{probe}.path")) {
                assert_eq!(v, path, "{overlay}/{name} {probe}");
            }
            for (name, v) in per_sts(&s, overlay, &format!("{probe}.port")) {
                assert_eq!(v, "8080", "{overlay}/{name} {probe} port");
            }
        }
        for (name, v) in per_sts(&s, overlay, "podManagementPolicy") {
            assert_eq!(v, "Parallel", "{overlay}/{name}");
        }
        for field in ["pvcRetention.whenDeleted", "pvcRetention.whenScaled"] {
            for (name, v) in per_sts(&s, overlay, field) {
                assert_eq!(v, "Retain", "{overlay}/{name} {field}");
            }
        }
        for (name, v) in per_sts(&s, overlay, "terminationGracePeriodSeconds") {
            assert!(
                v.parse::<u64>().unwrap() >= 60,
                "{overlay}/{name}: grace {v} s is too short for a drain"
            );
        }
        for (name, v) in per_sts(&s, overlay, "mountPath") {
            assert_eq!(v, "/var/lib/shoal", "{overlay}/{name}");
        }
        // Discovery: the seeds are the headless Service, which publishes not-ready pods.
        for (name, svc) in per_sts(&s, overlay, "serviceName") {
            assert_eq!(
                get(&s, &format!("{overlay}.services[{svc}].headless")),
                "true",
                "{overlay}/{name}"
            );
            assert_eq!(
                get(
                    &s,
                    &format!("{overlay}.services[{svc}].publishNotReadyAddresses")
                ),
                "true"
            );
            let seeds = per_sts(&s, overlay, "env.CASSANDRA_SEEDS");
            assert!(
                seeds.iter().all(|(_, v)| *v == svc),
                "{overlay}: seeds {seeds:?} != {svc}"
            );
        }
        assert_eq!(
            get(&s, &format!("{overlay}.services[shoal].ports.cql")),
            "9042"
        );
        assert_eq!(
            get(&s, &format!("{overlay}.pdbs[shoal].maxUnavailable")),
            "1"
        );
    }
    assert_eq!(
        per_sts(&s, "k8s_manifests_overlays_dev", "replicas"),
        vec![("shoal", "1")]
    );

    // prod: one StatefulSet per rack, each pinned to its own zone, with its own rack name.
    let racks = per_sts(&s, "k8s_manifests_overlays_prod", "env.CASSANDRA_RACK");
    assert_eq!(
        racks,
        vec![("shoal-r1", "r1"), ("shoal-r2", "r2"), ("shoal-r3", "r3")]
    );
    let zones = per_sts(&s, "k8s_manifests_overlays_prod", "zones");
    assert_eq!(
        zones,
        vec![
            ("shoal-r1", "[\"zone-a\"]"),
            ("shoal-r2", "[\"zone-b\"]"),
            ("shoal-r3", "[\"zone-c\"]")
        ]
    );

    check_binary_defaults();
}

/// Starts the binary with only an address, a data dir and the ConfigMap's shoal.yaml (no port
/// flags), as the pod does, and checks the ports and probe paths the manifests rely on.
fn check_binary_defaults() {
    let ip = allocate_address();
    let data = tempfile::tempdir().unwrap();
    let config = workspace_dir().join("k8s/manifests/base/common/shoal.yaml");
    let log = data.path().join("stderr.log");
    let mut child = Command::new(shoal_bin())
        .args(["--data-dir", &data.path().join("d").display().to_string()])
        .args(["--config", &config.display().to_string()])
        .args([
            "--listen-address",
            &ip.to_string(),
            "--rpc-address",
            &ip.to_string(),
        ])
        .env("SHOAL_DRAIN_DELAY_MS", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("spawn shoal");
    let ip = IpAddr::V4(ip);
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect_timeout(&SocketAddr::new(ip, 9042), Duration::from_millis(200))
        .is_err()
    {
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "shoal exited with {status} on the ConfigMap's shoal.yaml:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        assert!(Instant::now() < deadline, "no CQL on the default port 9042");
        std::thread::sleep(Duration::from_millis(50));
    }
    for path in ["/startupz", "/livez", "/readyz"] {
        assert_eq!(
            admin_get(ip, path).0,
            200,
            "{path} on the default admin port 8080"
        );
    }
    let (_, status) = admin_get(ip, "/status");
    assert!(status.contains("\"storage_port\":7000"), "{status}");
    assert!(status.contains("\"native_port\":9042"), "{status}");
    // /drain is what preStop calls: it must drain and answer 200.
    assert_eq!(admin_get(ip, "/drain").0, 200);
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert!(status.success(), "exit {status}");
}

fn admin_get(ip: IpAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect_timeout(&SocketAddr::new(ip, 8080), Duration::from_secs(2))
        .unwrap_or_else(|e| panic!("admin port 8080 on {ip}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {ip}\r\n\r\n").unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).unwrap();
    let status = buf
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (
        status,
        buf.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default(),
    )
}
