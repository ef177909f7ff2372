use std::collections::HashMap;
use std::ffi::OsString;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use shoal_engine::CommitLogSync;
use shoal_node::config::{
    self, Config, ConfigError, auto_address, load_with_warnings, parse_data_size, parse_duration,
};

fn args(list: &[&str]) -> Vec<OsString> {
    std::iter::once("shoal")
        .chain(list.iter().copied())
        .map(OsString::from)
        .collect()
}

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| map.get(k).cloned()
}

fn no_env(_: &str) -> Option<String> {
    None
}

fn write_yaml(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("shoal.yaml");
    std::fs::write(&p, text).unwrap();
    p
}

/// Loads with only a YAML file.
fn from_yaml(text: &str) -> Result<(Config, Vec<String>), ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let p = write_yaml(dir.path(), text);
    load_with_warnings(args(&["--config", p.to_str().unwrap()]), &no_env)
}

fn err_text(text: &str) -> String {
    from_yaml(text).unwrap_err().to_string()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn defaults() {
    let c = config::load(args(&[]), &no_env).unwrap();
    assert_eq!(c, Config::default());
    assert_eq!(c.cluster_name, "Test Cluster");
    assert_eq!(c.listen_address, ip("127.0.0.1"));
    assert_eq!(c.rpc_address, ip("127.0.0.1"));
    assert_eq!(c.broadcast_address, None);
    assert_eq!(c.native_transport_port, 9042);
    assert_eq!(c.storage_port, 7000);
    assert_eq!(c.admin_port, 8080);
    assert_eq!(c.data_dir, PathBuf::from("./data"));
    assert_eq!(c.data_file_directories, vec![PathBuf::from("./data/data")]);
    assert_eq!(c.commitlog_directory, PathBuf::from("./data/commitlog"));
    assert_eq!(c.hints_directory, PathBuf::from("./data/hints"));
    assert_eq!(
        c.commitlog_sync,
        CommitLogSync::Periodic { period_ms: 10_000 }
    );
    assert_eq!(c.commitlog_segment_size, 32 << 20);
    assert_eq!(c.num_tokens, 16);
    assert!(c.seeds.is_empty());
    assert_eq!(c.endpoint_snitch, "SimpleSnitch");
    assert_eq!((c.dc.as_str(), c.rack.as_str()), ("datacenter1", "rack1"));
    assert_eq!(c.memtable_heap_space, 256 << 20);
    assert_eq!(c.authenticator, "AllowAllAuthenticator");
    assert_eq!(c.authorizer, "AllowAllAuthorizer");
    assert_eq!(c.tombstone_warn_threshold, 1000);
    assert_eq!(c.tombstone_failure_threshold, 100_000);
    assert!(!c.skip_corrupt_commitlog_entries);
    assert_eq!(c.native_transport_max_frame_size, 16 << 20);
    assert_eq!(c.effective_broadcast_address(), ip("127.0.0.1"));
    assert_eq!(c.effective_broadcast_rpc_address(), ip("127.0.0.1"));
}

#[test]
fn precedence_file_then_env_then_flags() {
    let dir = tempfile::tempdir().unwrap();
    let p = write_yaml(
        dir.path(),
        "cluster_name: from-file\nnum_tokens: 8\nlisten_address: 10.0.0.1\nstorage_port: 7100\n\
         dc: file-dc\nrack: file-rack\n",
    );
    let env = env_of(&[
        ("CASSANDRA_CLUSTER_NAME", "from-env"),
        ("CASSANDRA_NUM_TOKENS", "4"),
        ("CASSANDRA_DC", "env-dc"),
    ]);
    let (c, _) = load_with_warnings(
        args(&[
            "--config",
            p.to_str().unwrap(),
            "--cluster-name",
            "from-flag",
            "--rack",
            "flag-rack",
        ]),
        &env,
    )
    .unwrap();
    assert_eq!(c.cluster_name, "from-flag"); // flag > env > file
    assert_eq!(c.num_tokens, 4); // env > file
    assert_eq!(c.dc, "env-dc");
    assert_eq!(c.rack, "flag-rack");
    assert_eq!(c.listen_address, ip("10.0.0.1")); // file > default
    assert_eq!(c.storage_port, 7100);
    // rpc_address follows the final listen address when nobody set it.
    assert_eq!(c.rpc_address, ip("10.0.0.1"));

    let (c, _) = load_with_warnings(
        args(&[
            "--config",
            p.to_str().unwrap(),
            "--listen-address",
            "10.0.0.9",
        ]),
        &env_of(&[("CASSANDRA_LISTEN_ADDRESS", "10.0.0.5")]),
    )
    .unwrap();
    assert_eq!(c.listen_address, ip("10.0.0.9"));
    assert_eq!(c.rpc_address, ip("10.0.0.9"));
}

#[test]
fn rpc_address_set_explicitly_stays() {
    let (c, _) = from_yaml("rpc_address: 0.0.0.0\nlisten_address: 10.1.1.1\n").unwrap();
    assert_eq!(c.rpc_address, ip("0.0.0.0"));
    // A wildcard cannot be advertised: clients are told the broadcast address.
    assert_eq!(c.effective_broadcast_rpc_address(), ip("10.1.1.1"));
    let c = config::load(
        args(&["--rpc-address", "10.2.2.2", "--listen-address", "10.1.1.1"]),
        &no_env,
    )
    .unwrap();
    assert_eq!(c.rpc_address, ip("10.2.2.2"));
}

#[test]
fn all_flags() {
    let c = config::load(
        args(&[
            "--data-dir",
            "/srv/shoal",
            "--listen-address",
            "10.0.0.2",
            "--rpc-address",
            "10.0.0.3",
            "--broadcast-address",
            "192.0.2.1",
            "--cql-port",
            "19042",
            "--storage-port",
            "17000",
            "--admin-port",
            "18080",
            "--seeds",
            "a, b:7001,,c",
            "--cluster-name",
            "prod",
            "--dc",
            "eu",
            "--rack",
            "r2",
            "--num-tokens",
            "32",
            "--commitlog-sync",
            "batch",
        ]),
        &no_env,
    )
    .unwrap();
    assert_eq!(c.data_dir, PathBuf::from("/srv/shoal"));
    assert_eq!(c.listen_address, ip("10.0.0.2"));
    assert_eq!(c.rpc_address, ip("10.0.0.3"));
    assert_eq!(c.broadcast_address, Some(ip("192.0.2.1")));
    assert_eq!(
        (c.native_transport_port, c.storage_port, c.admin_port),
        (19042, 17000, 18080)
    );
    assert_eq!(c.seeds, vec!["a", "b:7001", "c"]);
    assert_eq!(c.cluster_name, "prod");
    assert_eq!((c.dc.as_str(), c.rack.as_str()), ("eu", "r2"));
    assert_eq!(c.num_tokens, 32);
    assert_eq!(c.commitlog_sync, CommitLogSync::Batch);
}

#[test]
fn help_and_version_are_cli_errors_to_exit_with() {
    for flag in ["--help", "--version"] {
        match config::load(args(&[flag]), &no_env) {
            Err(ConfigError::Cli(e)) => assert_eq!(e.exit_code(), 0, "{flag}"),
            other => panic!("{flag}: {other:?}"),
        }
    }
    let help = config::command().render_long_help().to_string();
    for flag in [
        "--config",
        "--data-dir",
        "--listen-address",
        "--rpc-address",
        "--broadcast-address",
        "--cql-port",
        "--storage-port",
        "--admin-port",
        "--seeds",
        "--cluster-name",
        "--dc",
        "--rack",
        "--num-tokens",
        "--commitlog-sync",
    ] {
        assert!(help.contains(flag), "help lacks {flag}");
    }
}

#[test]
fn bad_flags_name_flag_and_value() {
    let e = config::load(args(&["--listen-address", "not an ip"]), &no_env)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("--listen-address") && e.contains("not an ip"),
        "{e}"
    );
    let e = config::load(args(&["--cql-port", "99999"]), &no_env)
        .unwrap_err()
        .to_string();
    assert!(e.contains("--cql-port") && e.contains("99999"), "{e}");
    let e = config::load(args(&["--commitlog-sync", "sometimes"]), &no_env)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("--commitlog-sync") && e.contains("sometimes"),
        "{e}"
    );
    let e = config::load(args(&["--num-tokens", "0"]), &no_env)
        .unwrap_err()
        .to_string();
    assert!(e.contains("num_tokens"), "{e}");
}

#[test]
fn bad_env_names_variable_and_value() {
    let e = config::load(args(&[]), &env_of(&[("CASSANDRA_NUM_TOKENS", "many")]))
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        r#"invalid value for CASSANDRA_NUM_TOKENS: "many" (expected a positive integer)"#
    );
    let e = config::load(
        args(&[]),
        &env_of(&[("CASSANDRA_BROADCAST_ADDRESS", "10.0.0.300")]),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("CASSANDRA_BROADCAST_ADDRESS") && e.contains("10.0.0.300"),
        "{e}"
    );
}

#[test]
fn env_vars_of_the_official_image() {
    let env = env_of(&[
        ("CASSANDRA_CLUSTER_NAME", "docker"),
        ("CASSANDRA_SEEDS", "cass1,cass2"),
        ("CASSANDRA_LISTEN_ADDRESS", "172.17.0.2"),
        ("CASSANDRA_BROADCAST_ADDRESS", "203.0.113.7"),
        ("CASSANDRA_RPC_ADDRESS", "0.0.0.0"),
        ("CASSANDRA_BROADCAST_RPC_ADDRESS", "203.0.113.8"),
        ("CASSANDRA_DC", "dc1"),
        ("CASSANDRA_RACK", "rackA"),
        (
            "CASSANDRA_ENDPOINT_SNITCH",
            "org.apache.cassandra.locator.GossipingPropertyFileSnitch",
        ),
        ("CASSANDRA_NUM_TOKENS", "256"),
    ]);
    let c = config::load(args(&[]), &env).unwrap();
    assert_eq!(c.cluster_name, "docker");
    assert_eq!(c.seeds, vec!["cass1", "cass2"]);
    assert_eq!(c.listen_address, ip("172.17.0.2"));
    assert_eq!(c.broadcast_address, Some(ip("203.0.113.7")));
    assert_eq!(c.rpc_address, ip("0.0.0.0"));
    assert_eq!(c.broadcast_rpc_address, Some(ip("203.0.113.8")));
    assert_eq!((c.dc.as_str(), c.rack.as_str()), ("dc1", "rackA"));
    assert_eq!(c.endpoint_snitch, "GossipingPropertyFileSnitch");
    assert_eq!(c.num_tokens, 256);
    for name in config::ENV_VARS {
        assert!(env(name).is_some(), "{name} untested");
    }
    // Empty variables mean "not set", as compose files often pass them.
    let c = config::load(args(&[]), &env_of(&[("CASSANDRA_CLUSTER_NAME", "")])).unwrap();
    assert_eq!(c.cluster_name, "Test Cluster");
}

#[test]
fn auto_address_is_a_usable_ipv4() {
    let a = auto_address();
    match a {
        IpAddr::V4(v4) => assert!(!v4.is_loopback() || v4 == std::net::Ipv4Addr::LOCALHOST),
        IpAddr::V6(_) => panic!("auto must pick IPv4, got {a}"),
    }
    let env = env_of(&[
        ("CASSANDRA_LISTEN_ADDRESS", "auto"),
        ("CASSANDRA_BROADCAST_ADDRESS", "auto"),
    ]);
    let c = config::load(args(&[]), &env).unwrap();
    assert_eq!(c.listen_address, a);
    assert_eq!(c.broadcast_address, Some(a));
    assert_eq!(c.rpc_address, a);
    let c = config::load(args(&["--listen-address", "auto"]), &no_env).unwrap();
    assert_eq!(c.listen_address, a);
}

#[test]
fn host_names_resolve() {
    let (c, _) = from_yaml("listen_address: localhost\nrpc_address: localhost\n").unwrap();
    assert!(c.listen_address.is_loopback());
    assert!(c.rpc_address.is_loopback());
}

#[test]
fn wildcard_listen_address_refused() {
    let e = config::load(args(&["--listen-address", "0.0.0.0"]), &no_env)
        .unwrap_err()
        .to_string();
    assert!(e.contains("listen_address cannot be a wildcard"), "{e}");
}

#[test]
fn data_dir_moves_derived_paths_unless_explicit() {
    let c = config::load(args(&["--data-dir", "/var/lib/shoal"]), &no_env).unwrap();
    assert_eq!(
        c.data_file_directories,
        vec![PathBuf::from("/var/lib/shoal/data")]
    );
    assert_eq!(
        c.commitlog_directory,
        PathBuf::from("/var/lib/shoal/commitlog")
    );
    assert_eq!(c.hints_directory, PathBuf::from("/var/lib/shoal/hints"));
    assert_eq!(c.system_directory(), PathBuf::from("/var/lib/shoal/system"));

    let dir = tempfile::tempdir().unwrap();
    let p = write_yaml(
        dir.path(),
        "data_dir: /from/file\ncommitlog_directory: /fast/commitlog\n",
    );
    let (c, _) = load_with_warnings(
        args(&["--config", p.to_str().unwrap(), "--data-dir", "/from/flag"]),
        &no_env,
    )
    .unwrap();
    assert_eq!(c.data_dir, PathBuf::from("/from/flag"));
    assert_eq!(
        c.data_file_directories,
        vec![PathBuf::from("/from/flag/data")]
    );
    assert_eq!(c.commitlog_directory, PathBuf::from("/fast/commitlog"));
    assert_eq!(c.hints_directory, PathBuf::from("/from/flag/hints"));

    let (c, _) =
        from_yaml("data_file_directories:\n  - /d1\n  - /d2\nhints_directory: /h\n").unwrap();
    assert_eq!(
        c.data_file_directories,
        vec![PathBuf::from("/d1"), PathBuf::from("/d2")]
    );
    assert_eq!(c.hints_directory, PathBuf::from("/h"));
    assert!(err_text("data_file_directories: /d1\n").contains("data_file_directories"));
    assert!(err_text("data_file_directories: []\n").contains("at least one"));
}

#[test]
fn duration_forms() {
    let ok = [
        ("10000ms", Duration::from_millis(10_000)),
        ("10s", Duration::from_secs(10)),
        ("5m", Duration::from_secs(300)),
        ("1h", Duration::from_secs(3600)),
        ("2d", Duration::from_secs(2 * 86_400)),
        ("500us", Duration::from_micros(500)),
        ("500µs", Duration::from_micros(500)),
        ("7ns", Duration::from_nanos(7)),
        ("0ms", Duration::ZERO),
    ];
    for (s, d) in ok {
        assert_eq!(parse_duration(s), Some(d), "{s}");
    }
    for bad in [
        "10",
        "10 s",
        "10S",
        "10MS",
        "10sec",
        "-1s",
        "1.5s",
        "",
        "ms",
        " 10s",
        "10s ",
        "99999999999999999999s",
    ] {
        assert_eq!(parse_duration(bad), None, "{bad:?}");
    }
}

#[test]
fn data_size_forms() {
    let ok = [
        ("64MiB", 64 << 20),
        ("1GiB", 1 << 30),
        ("512KiB", 512 << 10),
        ("100B", 100),
        ("0", 0),
    ];
    for (s, n) in ok {
        assert_eq!(parse_data_size(s), Some(n), "{s}");
    }
    for bad in [
        "64MB",
        "64mib",
        "64mb",
        "64M",
        "64",
        "64 MiB",
        "64 lemons",
        "-1MiB",
        "1.5MiB",
        "",
        "MiB",
        "9999999999GiB",
    ] {
        assert_eq!(parse_data_size(bad), None, "{bad:?}");
    }
}

#[test]
fn yaml_units_and_error_texts() {
    let (c, _) = from_yaml(
        "commitlog_sync: periodic\ncommitlog_sync_period: 5s\ncommitlog_segment_size: 8MiB\n\
         memtable_heap_space: 1GiB\nnative_transport_max_frame_size: 512KiB\n",
    )
    .unwrap();
    assert_eq!(
        c.commitlog_sync,
        CommitLogSync::Periodic { period_ms: 5000 }
    );
    assert_eq!(c.commitlog_segment_size, 8 << 20);
    assert_eq!(c.memtable_heap_space, 1 << 30);
    assert_eq!(c.native_transport_max_frame_size, 512 << 10);

    assert_eq!(
        err_text("memtable_heap_space: 64 lemons\n"),
        r#"invalid value for memtable_heap_space: "64 lemons" (expected a data size like 64MiB; units B, KiB, MiB, GiB, case-sensitive)"#
    );
    assert!(
        err_text("commitlog_segment_size: 32MB\n").contains(r#"commitlog_segment_size: "32MB""#)
    );
    assert!(err_text("memtable_heap_space: 64\n").contains(r#"memtable_heap_space: "64""#));
    let e = err_text("commitlog_sync_period: 10\n");
    assert!(
        e.starts_with(r#"invalid value for commitlog_sync_period: "10" (expected a duration"#),
        "{e}"
    );
    // Sub-millisecond remainders cannot be honoured by a millisecond setting.
    let e = err_text("commitlog_sync_period: 500us\n");
    assert!(e.contains(r#"commitlog_sync_period: "500us""#), "{e}");
    let (c, _) = from_yaml("commitlog_sync_period: 2000us\n").unwrap();
    assert_eq!(c.commitlog_sync, CommitLogSync::Periodic { period_ms: 2 });
    assert!(err_text("commitlog_sync: sometimes\n").contains(r#"commitlog_sync: "sometimes""#));
    assert!(
        err_text("native_transport_port: 70000\n").contains(r#"native_transport_port: "70000""#)
    );
    assert!(
        err_text("skip_corrupt_commitlog_entries: maybe\n")
            .contains("skip_corrupt_commitlog_entries")
    );
    assert!(
        err_text("tombstone_warn_threshold: -5\n").contains(r#"tombstone_warn_threshold: "-5""#)
    );
}

#[test]
fn legacy_unit_keys() {
    let (c, w) = from_yaml(
        "commitlog_sync_period_in_ms: 10000\nmemtable_heap_space_in_mb: 64\n\
         commitlog_segment_size_in_mb: 8\nnative_transport_max_frame_size_in_mb: 32\n",
    )
    .unwrap();
    assert_eq!(
        c.commitlog_sync,
        CommitLogSync::Periodic { period_ms: 10_000 }
    );
    assert_eq!(c.memtable_heap_space, 64 << 20);
    assert_eq!(c.commitlog_segment_size, 8 << 20);
    assert_eq!(c.native_transport_max_frame_size, 32 << 20);
    assert!(
        w.iter()
            .any(|w| w.contains("memtable_heap_space_in_mb is deprecated"))
    );

    let (c, w) = from_yaml(
        "commitlog_sync: group\ncommitlog_sync_group_window_in_ms: 15.0\n\
         commitlog_sync_batch_window_in_ms: 2\n",
    )
    .unwrap();
    assert_eq!(c.commitlog_sync, CommitLogSync::Group { window_ms: 15 });
    assert!(
        w.iter()
            .any(|w| w.contains("commitlog_sync_batch_window_in_ms"))
    );

    assert!(
        err_text("memtable_heap_space_in_mb: 64MiB\n")
            .contains(r#"memtable_heap_space_in_mb: "64MiB""#)
    );
    let e = err_text("memtable_heap_space: 64MiB\nmemtable_heap_space_in_mb: 64\n");
    assert!(e.contains("both memtable_heap_space and"), "{e}");
}

#[test]
fn commitlog_sync_modes() {
    let (c, _) = from_yaml("commitlog_sync: batch\n").unwrap();
    assert_eq!(c.commitlog_sync, CommitLogSync::Batch);
    let (c, _) = from_yaml("commitlog_sync: group\ncommitlog_sync_group_window: 15ms\n").unwrap();
    assert_eq!(c.commitlog_sync, CommitLogSync::Group { window_ms: 15 });
    let c = config::load(args(&["--commitlog-sync", "group"]), &no_env).unwrap();
    assert_eq!(c.commitlog_sync, CommitLogSync::Group { window_ms: 1000 });
    // The flag switches the mode; the file's period still applies.
    let dir = tempfile::tempdir().unwrap();
    let p = write_yaml(
        dir.path(),
        "commitlog_sync: batch\ncommitlog_sync_period: 2s\n",
    );
    let c = config::load(
        args(&[
            "--config",
            p.to_str().unwrap(),
            "--commitlog-sync",
            "periodic",
        ]),
        &no_env,
    )
    .unwrap();
    assert_eq!(
        c.commitlog_sync,
        CommitLogSync::Periodic { period_ms: 2000 }
    );
    assert!(err_text("commitlog_sync_period: 0ms\n").contains("commitlog_sync_period is 0"));
}

#[test]
fn unknown_key_is_an_error_naming_it() {
    assert_eq!(
        err_text("comitlog_sync: periodic\n"),
        r#"unknown configuration key "comitlog_sync" in shoal.yaml (did you mean "commitlog_sync"?)"#
    );
    assert_eq!(
        err_text("frobnicate: yes\n"),
        r#"unknown configuration key "frobnicate" in shoal.yaml"#
    );
}

#[test]
fn ignored_cassandra_keys_warn_once() {
    let (c, w) = from_yaml(
        "cluster_name: x\nconcurrent_reads: 32\nhinted_handoff_enabled: true\n\
         server_encryption_options:\n  internode_encryption: none\nmax_hint_window: 3h\n\
         hints_flush_period_in_ms: 10000\n",
    )
    .unwrap();
    assert_eq!(c.cluster_name, "x");
    let ignored: Vec<_> = w.iter().filter(|w| w.contains("does not use")).collect();
    assert_eq!(ignored.len(), 1, "{w:?}");
    // hinted_handoff_enabled and max_hint_window are honoured (the coordinator's hints).
    assert!(!ignored[0].contains("hint_window"), "{}", ignored[0]);
    for k in [
        "concurrent_reads",
        "server_encryption_options",
        "hints_flush_period_in_ms",
    ] {
        assert!(ignored[0].contains(k), "{}", ignored[0]);
    }
}

#[test]
fn seed_provider_structure() {
    let (c, _) = from_yaml(
        "seed_provider:\n  - class_name: org.apache.cassandra.locator.SimpleSeedProvider\n    \
         parameters:\n      - seeds: \"10.0.0.1:7000, 10.0.0.2,seed3.example\"\n",
    )
    .unwrap();
    assert_eq!(c.seeds, vec!["10.0.0.1:7000", "10.0.0.2", "seed3.example"]);

    let e = err_text(
        "seed_provider:\n  - class_name: com.example.K8sSeeds\n    parameters:\n      - seeds: a\n",
    );
    assert!(
        e.contains("seed_provider[0].class_name") && e.contains("com.example.K8sSeeds"),
        "{e}"
    );
    let e = err_text("seed_provider: \"a,b\"\n");
    assert!(e.starts_with("invalid value for seed_provider"), "{e}");
    let e = err_text(
        "seed_provider:\n  - class_name: SimpleSeedProvider\n    parameters:\n      - sedes: a\n",
    );
    assert!(
        e.contains(r#""seed_provider[0].parameters[0].sedes" in shoal.yaml"#),
        "{e}"
    );
    // Env and flags override the file's seeds.
    let dir = tempfile::tempdir().unwrap();
    let p = write_yaml(
        dir.path(),
        "seed_provider:\n  - class_name: SimpleSeedProvider\n    parameters:\n      - seeds: f\n",
    );
    let c = config::load(
        args(&["--config", p.to_str().unwrap()]),
        &env_of(&[("CASSANDRA_SEEDS", "e1,e2")]),
    )
    .unwrap();
    assert_eq!(c.seeds, vec!["e1", "e2"]);
}

#[test]
fn auth_class_names_normalised() {
    let (c, _) = from_yaml(
        "authenticator: org.apache.cassandra.auth.PasswordAuthenticator\n\
         authorizer: CassandraAuthorizer\n",
    )
    .unwrap();
    assert_eq!(c.authenticator, "PasswordAuthenticator");
    assert_eq!(c.authorizer, "CassandraAuthorizer");
    // Cassandra 5 writes it as a parameterized class.
    let (c, _) = from_yaml(
        "authenticator:\n  class_name: org.apache.cassandra.auth.AllowAllAuthenticator\n",
    )
    .unwrap();
    assert_eq!(c.authenticator, "AllowAllAuthenticator");
    let e = err_text("authorizer: com.example.Custom\n");
    assert!(e.contains(r#"authorizer: "com.example.Custom""#), "{e}");
}

#[test]
fn null_values_mean_default_and_empty_file_is_fine() {
    let (c, _) = from_yaml("listen_address:\nhints_directory:\ncluster_name: ~\n").unwrap();
    assert_eq!(c, Config::default());
    let (c, w) = from_yaml("").unwrap();
    assert_eq!(c, Config::default());
    assert!(w.is_empty());
    assert!(err_text("- a\n- b\n").contains("top level must be a mapping"));
    assert!(err_text("key: [unclosed\n").contains("cannot parse"));
}

#[test]
fn missing_config_file() {
    let e = config::load(args(&["--config", "/nonexistent/shoal.yaml"]), &no_env)
        .unwrap_err()
        .to_string();
    assert!(e.contains("/nonexistent/shoal.yaml"), "{e}");
}

/// The shape of a stock Cassandra 4.1 cassandra.yaml (abridged), which must load.
#[test]
fn stock_cassandra_yaml_loads() {
    let text = r#"
cluster_name: 'Test Cluster'
num_tokens: 16
allocate_tokens_for_local_replication_factor: 3
hinted_handoff_enabled: true
max_hint_window: 3h
hinted_handoff_throttle: 1024KiB
max_hints_delivery_threads: 2
hints_flush_period: 10000ms
max_hints_file_size: 128MiB
auto_hints_cleanup_enabled: false
batchlog_replay_throttle: 1024KiB
authenticator: AllowAllAuthenticator
authorizer: AllowAllAuthorizer
role_manager: CassandraRoleManager
network_authorizer: AllowAllNetworkAuthorizer
roles_validity: 2000ms
permissions_validity: 2000ms
credentials_validity: 2000ms
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
cdc_enabled: false
disk_failure_policy: stop
commit_failure_policy: stop
prepared_statements_cache_size:
key_cache_size:
key_cache_save_period: 4h
row_cache_size: 0MiB
row_cache_save_period: 0s
counter_cache_size:
counter_cache_save_period: 7200s
commitlog_sync: periodic
commitlog_sync_period: 10000ms
commitlog_segment_size: 32MiB
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "127.0.0.1:7000"
concurrent_reads: 32
concurrent_writes: 32
concurrent_counter_writes: 32
concurrent_materialized_view_writes: 32
memtable_allocation_type: heap_buffers
index_summary_capacity:
index_summary_resize_interval: 60m
trickle_fsync: false
trickle_fsync_interval: 10240KiB
storage_port: 7000
ssl_storage_port: 7001
listen_address: localhost
start_native_transport: true
native_transport_port: 9042
native_transport_allow_older_protocols: true
rpc_address: localhost
rpc_keepalive: true
incremental_backups: false
snapshot_before_compaction: false
auto_snapshot: true
snapshot_links_per_second: 0
column_index_size: 64KiB
column_index_cache_size: 2KiB
concurrent_materialized_view_builders: 1
compaction_throughput: 64MiB/s
sstable_preemptive_open_interval: 50MiB
uuid_sstable_identifiers_enabled: false
read_request_timeout: 5000ms
range_request_timeout: 10000ms
write_request_timeout: 2000ms
counter_write_request_timeout: 5000ms
cas_contention_timeout: 1000ms
truncate_request_timeout: 60000ms
request_timeout: 10000ms
slow_query_log_timeout: 500ms
endpoint_snitch: SimpleSnitch
dynamic_snitch_update_interval: 100ms
dynamic_snitch_reset_interval: 600000ms
dynamic_snitch_badness_threshold: 1.0
server_encryption_options:
  internode_encryption: none
  legacy_ssl_storage_port_enabled: false
  keystore: conf/.keystore
  keystore_password: cassandra
client_encryption_options:
  enabled: false
  keystore: conf/.keystore
  keystore_password: cassandra
internode_compression: dc
inter_dc_tcp_nodelay: false
trace_type_query_ttl: 1d
trace_type_repair_ttl: 7d
user_defined_functions_enabled: false
scripted_user_defined_functions_enabled: false
transparent_data_encryption_options:
  enabled: false
  chunk_length_kb: 64
tombstone_warn_threshold: 1000
tombstone_failure_threshold: 100000
replica_filtering_protection:
    cached_rows_warn_threshold: 2000
    cached_rows_fail_threshold: 32000
batch_size_warn_threshold: 5KiB
batch_size_fail_threshold: 50KiB
unlogged_batch_across_partitions_warn_threshold: 10
compaction_large_partition_warning_threshold: 100MiB
gc_warn_threshold: 1000ms
audit_logging_options:
  enabled: false
  logger:
    - class_name: BinAuditLogger
diagnostic_events_enabled: false
repaired_data_tracking_for_range_reads_enabled: false
materialized_views_enabled: false
sasi_indexes_enabled: false
transient_replication_enabled: false
drop_compact_storage_enabled: false
"#;
    let (c, w) = from_yaml(text).unwrap();
    assert_eq!(c.cluster_name, "Test Cluster");
    assert_eq!(c.seeds, vec!["127.0.0.1:7000"]);
    assert!(c.listen_address.is_loopback());
    assert_eq!(w.len(), 1, "{w:?}");
}

#[test]
fn coordinator_timeouts_and_hints() {
    let (c, _) = from_yaml("cluster_name: x\n").unwrap();
    assert_eq!(
        (
            c.write_request_timeout_ms,
            c.read_request_timeout_ms,
            c.range_request_timeout_ms,
            c.truncate_request_timeout_ms,
            c.hinted_handoff_enabled,
            c.max_hint_window_ms
        ),
        (2000, 5000, 10_000, 60_000, true, 10_800_000)
    );
    let (c, _) = from_yaml(
        "write_request_timeout_in_ms: 500\nread_request_timeout: 3s\nhinted_handoff_enabled: false\nmax_hint_window: 1h\n",
    )
    .unwrap();
    assert_eq!(c.write_request_timeout_ms, 500);
    assert_eq!(c.read_request_timeout_ms, 3000);
    assert!(!c.hinted_handoff_enabled);
    assert_eq!(c.max_hint_window_ms, 3_600_000);
    assert!(
        err_text("write_request_timeout: 1s\nwrite_request_timeout_in_ms: 1000\n")
            .contains("write_request_timeout")
    );
}

#[test]
fn cas_contention_timeout() {
    let (c, _) = from_yaml("cluster_name: x\n").unwrap();
    assert_eq!(c.cas_contention_timeout_ms, 1000);
    let (c, _) = from_yaml("cas_contention_timeout: 2s\n").unwrap();
    assert_eq!(c.cas_contention_timeout_ms, 2000);
    let (c, _) = from_yaml("cas_contention_timeout_in_ms: 250\n").unwrap();
    assert_eq!(c.cas_contention_timeout_ms, 250);
}
