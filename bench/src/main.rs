//! shoal-bench: the benchmark harness. The workloads arrive with issue 7; until then this
//! binary says so instead of pretending to measure anything.

fn main() {
    eprintln!("shoal-bench: no workloads yet (tracked in issue 7: shoal-bench)");
    std::process::exit(2);
}
