//! The `shoal` binary's command line and configuration checks. A bad config must stop the
//! node at once with a message naming the offending key and value, not start it with a
//! silently ignored setting.

use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use shoal_tests::{allocate_address, external_target, shoal_bin};

struct Run {
    status: ExitStatus,
    stdout: String,
    stderr: String,
    took: Duration,
}

/// Runs the binary with `args`; a process still alive after `limit` is killed and the test
/// fails, since that means it started a node instead of refusing.
fn run(args: &[String], limit: Duration) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let out = std::fs::File::create(dir.path().join("out")).unwrap();
    let err = std::fs::File::create(dir.path().join("err")).unwrap();
    let started = Instant::now();
    let mut child = Command::new(shoal_bin())
        .args(args)
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("spawn shoal");
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "shoal {args:?} still running after {limit:?}; stderr:\n{}",
                std::fs::read_to_string(dir.path().join("err")).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Run {
        status,
        took: started.elapsed(),
        stdout: std::fs::read_to_string(dir.path().join("out")).unwrap_or_default(),
        stderr: std::fs::read_to_string(dir.path().join("err")).unwrap_or_default(),
    }
}

/// Arguments for a node that would otherwise start: its own address and data dir.
fn node_args(dir: &std::path::Path, yaml: &str) -> Vec<String> {
    let ip = allocate_address().to_string();
    let config = dir.join("shoal.yaml");
    std::fs::write(&config, yaml).unwrap();
    [
        "--data-dir",
        &dir.join("data").display().to_string(),
        "--listen-address",
        &ip,
        "--rpc-address",
        &ip,
        "--config",
        &config.display().to_string(),
    ]
    .map(String::from)
    .to_vec()
}

fn skip_when_external() -> bool {
    if external_target().is_some() {
        eprintln!("SKIPPED against SHOAL_TEST_TARGET: tests the shoal binary itself");
        return true;
    }
    false
}

#[test]
fn help_lists_the_flags() {
    if skip_when_external() {
        return;
    }
    let r = run(&["--help".into()], Duration::from_secs(10));
    assert!(
        r.status.success(),
        "--help exited with {}: {}",
        r.status,
        r.stderr
    );
    for flag in [
        "--data-dir",
        "--listen-address",
        "--rpc-address",
        "--cql-port",
        "--storage-port",
        "--admin-port",
        "--cluster-name",
        "--config",
    ] {
        assert!(
            r.stdout.contains(flag),
            "--help does not mention {flag}:\n{}",
            r.stdout
        );
    }
}

#[test]
fn unknown_flag_is_rejected() {
    if skip_when_external() {
        return;
    }
    let r = run(&["--no-such-flag".into()], Duration::from_secs(10));
    assert!(!r.status.success());
    assert!(r.stderr.contains("--no-such-flag"), "stderr: {}", r.stderr);
}

#[test]
fn unknown_yaml_key_is_rejected_by_name() {
    if skip_when_external() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let args = node_args(
        dir.path(),
        "commitlog_sync: batch\nno_such_setting_xyz: 12\n",
    );
    let r = run(&args, Duration::from_secs(10));
    assert!(
        !r.status.success(),
        "started with an unknown key; stderr:\n{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("no_such_setting_xyz"),
        "stderr does not name the key:\n{}",
        r.stderr
    );
    assert!(
        r.took < Duration::from_secs(5),
        "took {:?} to refuse",
        r.took
    );
}

#[test]
fn bad_value_is_rejected_with_key_and_value() {
    if skip_when_external() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let args = node_args(dir.path(), "memtable_heap_space: lots\n");
    let r = run(&args, Duration::from_secs(10));
    assert!(
        !r.status.success(),
        "started with memtable_heap_space: lots; stderr:\n{}",
        r.stderr
    );
    for needle in ["memtable_heap_space", "lots"] {
        assert!(
            r.stderr.contains(needle),
            "stderr lacks {needle:?}:\n{}",
            r.stderr
        );
    }
    assert!(
        r.took < Duration::from_secs(5),
        "took {:?} to refuse",
        r.took
    );
}

#[test]
fn malformed_yaml_is_rejected() {
    if skip_when_external() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let args = node_args(dir.path(), "commitlog_sync: [batch\n");
    let r = run(&args, Duration::from_secs(10));
    assert!(
        !r.status.success(),
        "started with broken YAML; stderr:\n{}",
        r.stderr
    );
    // Point the operator at the file (or at least at YAML), not just "error".
    let lower = r.stderr.to_lowercase();
    assert!(
        r.stderr.contains("shoal.yaml") || lower.contains("yaml"),
        "stderr names neither the config file nor YAML:\n{}",
        r.stderr
    );
}
