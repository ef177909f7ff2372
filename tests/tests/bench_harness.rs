//! `shoal-bench` against a real node: every workload populates and runs briefly, exits 0,
//! reports operations and writes a JSON result file. Speed is not asserted here; the point is
//! that the harness a person benchmarks with actually works end to end.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use shoal_tests::{Node, NodeOptions, record, unique_keyspace, workspace_dir};

/// `SHOAL_BENCH_BIN`, else `<target>/debug/shoal-bench`, rebuilt once per test process so a
/// stale binary from an older checkout is never the one measured (a no-op when fresh).
fn bench_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Ok(bin) = std::env::var("SHOAL_BENCH_BIN") {
            let bin = PathBuf::from(bin);
            assert!(
                bin.is_file(),
                "SHOAL_BENCH_BIN={} does not exist",
                bin.display()
            );
            return bin;
        }
        let target_dir = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace_dir().join("target"));
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-p", "shoal-bench", "--bin", "shoal-bench"])
            .current_dir(workspace_dir())
            .status()
            .expect("failed to run cargo build for shoal-bench");
        assert!(status.success(), "cargo build -p shoal-bench failed");
        let bin = target_dir.join("debug").join("shoal-bench");
        assert!(bin.is_file(), "{} missing after build", bin.display());
        bin
    })
    .clone()
}

struct BenchRun {
    stdout: String,
    json: String,
}

fn run_bench(args: &[&str], json: &Path) -> BenchRun {
    let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    all.push("--json".into());
    all.push(json.display().to_string());
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(bench_bin())
        .args(&all)
        .env("RUST_LOG", "shoal_bench=info,scylla=warn")
        .stdin(Stdio::null())
        .output()
        .expect("spawn shoal-bench");
    let stdout = String::from_utf8_lossy(&stdout).into_owned();
    let stderr = String::from_utf8_lossy(&stderr).into_owned();
    assert!(
        status.success(),
        "shoal-bench {all:?} exited with {status}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
    );
    let json = std::fs::read_to_string(json).expect("JSON result file written");
    BenchRun { stdout, json }
}

/// The integer values of every `"key": N` in the JSON text, in order. Enough to check the
/// file without giving the test crate a JSON dependency.
fn json_ints(json: &str, key: &str) -> Vec<u64> {
    let pat = format!("\"{key}\": ");
    json.match_indices(&pat)
        .filter_map(|(i, _)| {
            let rest = &json[i + pat.len()..];
            let end = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            rest[..end].parse().ok()
        })
        .collect()
}

fn json_strings(json: &str, key: &str) -> Vec<String> {
    let pat = format!("\"{key}\": \"");
    json.match_indices(&pat)
        .filter_map(|(i, _)| {
            let rest = &json[i + pat.len()..];
            rest.find('"').map(|end| rest[..end].to_string())
        })
        .collect()
}

/// Each result's own "ops" is the first after its "phase"; the per-second timeline entries
/// that follow may legitimately be 0.
fn phase_ops(json: &str) -> Vec<u64> {
    json.split("\"phase\": ")
        .skip(1)
        .filter_map(|chunk| json_ints(chunk, "ops").first().copied())
        .collect()
}

fn assert_result_file(json: &str, phases: &[&str]) {
    for field in [
        "\"results\"",
        "\"ops_per_s\"",
        "\"latency\"",
        "\"p50_us\"",
        "\"p90_us\"",
        "\"p99_us\"",
        "\"p999_us\"",
        "\"max_us\"",
        "\"client_cpu_s\"",
        "\"timeline\"",
    ] {
        assert!(json.contains(field), "JSON lacks {field}:\n{json}");
    }
    assert_eq!(json_strings(json, "phase"), phases, "{json}");
    let ops = phase_ops(json);
    assert_eq!(ops.len(), phases.len(), "{json}");
    assert!(ops.iter().all(|&n| n > 0), "ops {ops:?}\n{json}");
    let errors = json_ints(json, "errors");
    assert!(errors.iter().all(|&e| e == 0), "errors {errors:?}\n{json}");
}

/// Populates a small table, then runs `workload` for about two seconds.
fn populate_and_run(workload: &str, extra: &[&str]) -> BenchRun {
    let node = Node::start(NodeOptions::default());
    let ks = unique_keyspace();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("out.json");
    let host = node.contact_point();
    let mut args = vec![
        "run",
        workload,
        "--hosts",
        &host,
        "--keyspace",
        &ks,
        "--populate",
        "-n",
        "300",
        "--concurrency",
        "8",
        "--duration",
        "2s",
    ];
    args.extend_from_slice(extra);
    let run = run_bench(&args, &json);
    assert_result_file(&run.json, &["populate", "run"]);
    record(&format!(
        "bench_harness {workload}: {}",
        run.stdout
            .lines()
            .find(|l| l.starts_with("A ") && l.contains(" run "))
            .unwrap_or("")
            .trim()
    ));
    run
}

#[test]
fn stress_write() {
    let run = populate_and_run("write", &[]);
    assert!(run.stdout.contains("ops/s"), "{}", run.stdout);
}

#[test]
fn stress_read_finds_every_populated_key() {
    let run = populate_and_run("read", &["--dist", "zipfian"]);
    assert!(
        !run.stdout.contains("found no row"),
        "reads of populated keys came back empty:\n{}",
        run.stdout
    );
    let reads = json_ints(&run.json, "reads");
    assert!(reads.iter().any(|&r| r > 0), "{reads:?}");
}

#[test]
fn stress_mixed_open_loop_with_warmup_and_svg() {
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("out.svg");
    let svg_arg = svg.display().to_string();
    let run = populate_and_run(
        "mixed",
        &["--rate", "300", "--warmup", "1s", "--svg", &svg_arg],
    );
    assert!(run.stdout.contains("(warm-up)"), "{}", run.stdout);
    assert!(run.json.contains("open-loop 300/s"), "{}", run.json);
    let svg = std::fs::read_to_string(&svg).expect("SVG written");
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert!(svg.contains("<polyline"), "{svg}");
}

#[test]
fn kv_workload_stops_at_exactly_ops() {
    // --ops ends the run long before --duration's 2 s would.
    let run = populate_and_run(
        "kv",
        &["--value-size", "256", "--read-ratio", "0.8", "--ops", "400"],
    );
    assert_eq!(phase_ops(&run.json), [300, 400], "{}", run.json);
}

#[test]
fn timeseries_reads_return_the_newest_points() {
    let node = Node::start(NodeOptions::default());
    let ks = unique_keyspace();
    let dir = tempfile::tempdir().unwrap();
    let host = node.contact_point();
    let args = [
        "run",
        "timeseries",
        "--hosts",
        &host,
        "--keyspace",
        &ks,
        "--populate",
        "-n",
        "50",
        "--points",
        "20",
        "--read-points",
        "5",
        "--read-ratio",
        "0.9",
        "--concurrency",
        "8",
        "--duration",
        "2s",
    ];
    let run = run_bench(&args, &dir.path().join("out.json"));
    assert_result_file(&run.json, &["populate", "run"]);
    assert!(!run.stdout.contains("found no row"), "{}", run.stdout);

    // The workload's "last N points" read relies on ts1's DESC clustering order.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ts: Vec<i64> = rt.block_on(async {
        let session = scylla::client::session_builder::SessionBuilder::new()
            .known_node(&host)
            .build()
            .await
            .unwrap();
        let q = format!("SELECT ts FROM \"{ks}\".ts1 WHERE series = 0 LIMIT 5");
        session
            .query_unpaged(q, &[])
            .await
            .unwrap()
            .into_rows_result()
            .unwrap()
            .rows::<(i64,)>()
            .unwrap()
            .map(|r| r.unwrap().0)
            .collect()
    });
    assert_eq!(ts.len(), 5, "{ts:?}");
    assert!(
        ts.windows(2).all(|w| w[0] > w[1]),
        "not newest first: {ts:?}"
    );
}

#[test]
fn compare_two_endpoints() {
    let a = Node::start(NodeOptions::default());
    let b = Node::start(NodeOptions::default());
    let ks = unique_keyspace();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("cmp.json");
    let (ha, hb) = (a.contact_point(), b.contact_point());
    let run = run_bench(
        &[
            "compare",
            "kv",
            "--hosts",
            &ha,
            "--against",
            &hb,
            "--keyspace",
            &ks,
            "--populate",
            "-n",
            "200",
            "--concurrency",
            "4",
            "--duration",
            "1s",
        ],
        &json,
    );
    assert!(run.stdout.contains("B/A"), "{}", run.stdout);
    assert!(run.json.contains("\"throughput_ratio\""), "{}", run.json);
    assert_eq!(
        json_strings(&run.json, "target"),
        ["A", "A", "B", "B"],
        "{}",
        run.json
    );
}
