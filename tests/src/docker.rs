//! Helpers for the tests that run the `shoal:dev` image (docker/build.sh) in Docker:
//! `k8s_docker` (containers one by one) and `k8s_rehearsal` (the StatefulSet rehearsal).
//!
//! Only objects a test created are ever touched: [`Resources`] records every container,
//! volume and network as it is created and removes them all when dropped, also when the
//! test panics (then it prints the containers' last log lines first).

use std::net::IpAddr;
use std::process::{Command, Output};
use std::sync::Mutex;

use crate::workspace_dir;

/// The image `docker/build.sh` builds.
pub const IMAGE: &str = "shoal:dev";

pub fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("run docker")
}

/// Runs docker and returns its trimmed stdout; fails the test with docker's stderr.
pub fn docker_ok(args: &[&str]) -> String {
    let out = docker(args);
    assert!(
        out.status.success(),
        "docker {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// True when a Docker engine answers. Without one the test is skipped loudly, except under
/// `CI=true`, where a missing engine fails it.
pub fn available(test: &str) -> bool {
    let ok = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        let msg = format!("*** {test}: NO DOCKER ENGINE RUNNING: the image test is SKIPPED ***");
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{msg} (CI=true requires Docker)");
        }
        eprintln!("\n{msg}\n");
    }
    ok
}

/// Builds the static binary and the image with `docker/build.sh`, once per test process.
/// Cargo and Docker both cache: when nothing changed, a second build (another test binary)
/// takes a second or two.
pub fn build_image() {
    static BUILT: Mutex<bool> = Mutex::new(false);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if *built {
        return;
    }
    let status = Command::new(workspace_dir().join("docker/build.sh"))
        .env("SHOAL_IMAGE", IMAGE)
        .status()
        .expect("run docker/build.sh");
    assert!(status.success(), "docker/build.sh failed");
    *built = true;
}

/// The IPv4 address of `container` on `network`.
pub fn container_ip(container: &str, network: &str) -> IpAddr {
    let format = format!("{{{{(index .NetworkSettings.Networks \"{network}\").IPAddress}}}}");
    docker_ok(&["inspect", container, "--format", &format])
        .parse()
        .unwrap_or_else(|e| panic!("{container} has no IP on {network}: {e}"))
}

/// The exit code of a stopped container.
pub fn exit_code(container: &str) -> i64 {
    docker_ok(&["inspect", container, "--format", "{{.State.ExitCode}}"])
        .parse()
        .expect("exit code")
}

/// The last `lines` lines of a container's output (stdout and stderr).
pub fn logs(container: &str, lines: usize) -> String {
    let out = docker(&["logs", "--tail", &lines.to_string(), container]);
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Everything a test created, removed on drop (containers, then volumes, then networks).
#[derive(Default)]
pub struct Resources {
    pub containers: Vec<String>,
    pub volumes: Vec<String>,
    pub networks: Vec<String>,
}

impl Resources {
    /// Records a container name before it is created (a failed `docker run` may still
    /// leave a created container behind).
    pub fn container(&mut self, name: &str) {
        if !self.containers.iter().any(|c| c == name) {
            self.containers.push(name.to_string());
        }
    }

    pub fn volume(&mut self, name: &str) {
        if !self.volumes.iter().any(|v| v == name) {
            self.volumes.push(name.to_string());
        }
    }

    pub fn network(&mut self, name: &str) {
        if !self.networks.iter().any(|n| n == name) {
            self.networks.push(name.to_string());
        }
    }

    /// Asserts that no container, volume or network whose name contains `prefix` is left.
    pub fn assert_gone(prefix: &str) {
        for (what, args) in [
            ("containers", ["ps", "-a", "--format", "{{.Names}}"]),
            ("volumes", ["volume", "ls", "--format", "{{.Name}}"]),
            ("networks", ["network", "ls", "--format", "{{.Name}}"]),
        ] {
            let filter = format!("name={prefix}");
            let mut full = vec![args[0], args[1]];
            full.extend(["--filter", filter.as_str()]);
            full.extend(&args[2..]);
            let left: Vec<String> = docker_ok(&full)
                .lines()
                .filter(|l| l.contains(prefix))
                .map(str::to_string)
                .collect();
            assert!(left.is_empty(), "{what} left behind: {left:?}");
        }
    }
}

impl Drop for Resources {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for c in &self.containers {
                eprintln!("----- last lines of {c} -----\n{}", logs(c, 40));
            }
        }
        for c in &self.containers {
            let _ = docker(&["rm", "-f", "-v", c]);
        }
        for v in &self.volumes {
            let _ = docker(&["volume", "rm", "-f", v]);
        }
        for n in &self.networks {
            let _ = docker(&["network", "rm", n]);
        }
    }
}
