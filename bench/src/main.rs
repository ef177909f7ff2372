//! shoal-bench: command-line entry point. See `shoal-bench --help`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use scylla::statement::Consistency;
use shoal_bench::dist::KeyDist;
use shoal_bench::report::{self, PhaseResult, ResultFile};
use shoal_bench::runner::{self, BenchConfig, Target};
use shoal_bench::schedule::{parse_count, parse_duration};
use shoal_bench::workload::{Replication, Workload};

#[derive(Parser, Debug)]
#[command(
    name = "shoal-bench",
    version,
    about = "cassandra-stress-like benchmarks for Shoal or any CQL cluster",
    long_about = "Runs cassandra-stress's write/read/mixed workloads on keyspace1.standard1, a \
key-value workload and a time-series workload through the scylla driver (prepared statements, \
token-aware routing). Closed loop by default; --rate switches to a fixed-rate open loop whose \
latencies count from each request's intended start."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Client runtime threads (default: one per core). With one request in flight,
    /// `--client-threads 1` keeps the driver's connection task and the request on one
    /// thread, so the latency has no cross-thread wake-up of the client's own.
    #[arg(long, global = true)]
    client_threads: Option<usize>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create the schema and write every partition once (sequential keys).
    Populate(Common),
    /// Run the workload (add --populate to populate first).
    Run(Common),
    /// Run the same workload against --hosts (A) then --against (B) and print B/A ratios.
    Compare {
        #[command(flatten)]
        common: Common,
        /// Hosts of the second target (B), comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        against: Vec<String>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum DistArg {
    Sequential,
    Uniform,
    Zipfian,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum StrategyArg {
    Simple,
    #[value(alias = "nts")]
    NetworkTopology,
}

#[derive(Args, Debug, Clone)]
struct Common {
    /// write | read | mixed (cassandra-stress standard1), kv, timeseries.
    #[arg(value_enum)]
    workload: Workload,
    /// Contact points, comma-separated; the port defaults to 9042.
    #[arg(long, value_delimiter = ',', default_value = "127.0.0.1")]
    hosts: Vec<String>,
    #[arg(long, default_value = "keyspace1")]
    keyspace: String,
    /// Replication factor (per datacenter with network-topology).
    #[arg(long, default_value_t = 1)]
    rf: u32,
    #[arg(long, value_enum, default_value = "simple")]
    strategy: StrategyArg,
    /// Datacenters for network-topology, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "datacenter1")]
    dc: Vec<String>,
    /// Consistency level: ONE, TWO, THREE, QUORUM, ALL, LOCAL_QUORUM, EACH_QUORUM, LOCAL_ONE, ANY.
    #[arg(long, default_value = "ONE", value_parser = parse_consistency)]
    cl: Consistency,
    /// Connections per host.
    #[arg(long, default_value_t = 1)]
    connections: usize,
    /// Requests in flight at most. Closed loop: the number of workers. Open loop: due requests
    /// beyond this wait in a queue, and the wait counts in their latency.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Fixed request rate in ops/s (open loop). Without it the run is closed-loop.
    #[arg(long)]
    rate: Option<f64>,
    /// Open loop: how often due requests are released, at the least. Each request's latency
    /// still counts from its own intended time, so this delay is measured, not hidden;
    /// releasing a few at a time lets client and server batch their socket calls, as many
    /// independent clients arriving at random do.
    #[arg(long, default_value = "200us", value_parser = parse_duration)]
    release_every: Duration,
    /// Seed of the run phase's key and operation choices. Default: a new one each
    /// invocation (printed with the results), so that runs repeated on one dataset write
    /// new keys instead of rewriting the previous run's, which would flatter compaction.
    /// `compare` uses one seed for both targets.
    #[arg(long)]
    seed: Option<u64>,
    /// Measured time, after the warm-up (e.g. 30s, 2m). Default 10s unless --ops is given.
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Stop after this many measured operations (e.g. 1M).
    #[arg(long, value_parser = parse_count)]
    ops: Option<u64>,
    /// Time whose operations are run but left out of the results.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    warmup: Duration,
    /// Number of partitions (keys, or series for timeseries), e.g. 1M.
    #[arg(short = 'n', long, default_value = "100k", value_parser = parse_count)]
    partitions: u64,
    /// Key distribution of the run phase (populate is always sequential).
    #[arg(long, value_enum, default_value = "uniform")]
    dist: DistArg,
    /// Zipfian exponent (weight of rank k is 1/k^s).
    #[arg(long, default_value_t = 0.99)]
    zipf_exponent: f64,
    /// Fraction of reads for mixed, kv and timeseries.
    #[arg(long, default_value_t = 0.5)]
    read_ratio: f64,
    /// Value size in bytes for kv.
    #[arg(long, default_value_t = 100)]
    value_size: usize,
    /// Points written per series when populating timeseries.
    #[arg(long, default_value_t = 100)]
    points: u64,
    /// Points a timeseries read fetches (the newest N).
    #[arg(long, default_value_t = 10)]
    read_points: u32,
    /// Populate before running (run and compare).
    #[arg(long)]
    populate: bool,
    /// Do not create the keyspace and table.
    #[arg(long)]
    no_schema: bool,
    /// Write results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Plot throughput and latency over time as SVG to this file.
    #[arg(long)]
    svg: Option<PathBuf>,
    /// Also report this local process's CPU use (e.g. the server under test).
    #[arg(long)]
    server_pid: Option<u32>,
}

fn parse_consistency(s: &str) -> Result<Consistency, String> {
    Ok(match s.to_ascii_uppercase().replace('-', "_").as_str() {
        "ANY" => Consistency::Any,
        "ONE" => Consistency::One,
        "TWO" => Consistency::Two,
        "THREE" => Consistency::Three,
        "QUORUM" => Consistency::Quorum,
        "ALL" => Consistency::All,
        "LOCAL_QUORUM" => Consistency::LocalQuorum,
        "EACH_QUORUM" => Consistency::EachQuorum,
        "LOCAL_ONE" => Consistency::LocalOne,
        other => return Err(format!("unknown consistency level {other}")),
    })
}

impl Common {
    fn config(&self, populate: bool, run: bool) -> Result<BenchConfig> {
        if self.concurrency == 0 {
            bail!("--concurrency must be at least 1");
        }
        if let Some(r) = self.rate
            && !(r > 0.0 && r.is_finite())
        {
            bail!("--rate must be a positive number of ops/s");
        }
        if self.zipf_exponent <= 0.0 {
            bail!("--zipf-exponent must be > 0");
        }
        let replication = match self.strategy {
            StrategyArg::Simple => Replication::Simple { rf: self.rf },
            StrategyArg::NetworkTopology => Replication::NetworkTopology {
                dcs: self.dc.iter().map(|d| (d.clone(), self.rf)).collect(),
            },
        };
        Ok(BenchConfig {
            workload: self.workload,
            keyspace: self.keyspace.clone(),
            replication,
            consistency: self.cl,
            connections: self.connections,
            concurrency: self.concurrency,
            rate: self.rate,
            release_every: self.release_every,
            seed: self.seed.unwrap_or_else(fresh_seed),
            duration: self.duration,
            ops: self.ops,
            warmup: self.warmup,
            partitions: self.partitions.max(1),
            dist: match self.dist {
                DistArg::Sequential => KeyDist::Sequential,
                DistArg::Uniform => KeyDist::Uniform,
                DistArg::Zipfian => KeyDist::Zipfian {
                    exponent: self.zipf_exponent,
                },
            },
            read_ratio: self.read_ratio,
            value_size: self.value_size,
            points: self.points,
            read_points: self.read_points,
            create_schema: !self.no_schema,
            populate,
            run,
            server_pid: self.server_pid,
        })
    }
}

fn hosts(list: &[String]) -> Vec<String> {
    list.iter().map(|h| runner::normalize_host(h)).collect()
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = cli.client_threads {
        rt.worker_threads(n.max(1));
    }
    rt.enable_all().build()?.block_on(async_main(cli))
}

async fn async_main(cli: Cli) -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "shoal_bench=info,scylla=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let (common, results, comparison) = match &cli.command {
        Command::Populate(c) => {
            let target = Target {
                label: "A".into(),
                hosts: hosts(&c.hosts),
            };
            let r = runner::bench_target(&target, &c.config(true, false)?).await?;
            (c, r, None)
        }
        Command::Run(c) => {
            let target = Target {
                label: "A".into(),
                hosts: hosts(&c.hosts),
            };
            let r = runner::bench_target(&target, &c.config(c.populate, true)?).await?;
            (c, r, None)
        }
        Command::Compare { common, against } => {
            let cfg = common.config(common.populate, true)?;
            let a = Target {
                label: "A".into(),
                hosts: hosts(&common.hosts),
            };
            let b = Target {
                label: "B".into(),
                hosts: hosts(against),
            };
            let mut results = runner::bench_target(&a, &cfg).await?;
            let rb = runner::bench_target(&b, &cfg).await?;
            let pick = |rs: &[PhaseResult]| rs.iter().rfind(|r| r.phase == "run").cloned();
            let cmp = match (pick(&results), pick(&rb)) {
                (Some(ra), Some(rb)) => Some(report::compare(&ra, &rb)),
                _ => None,
            };
            results.extend(rb);
            (common, results, cmp)
        }
    };

    println!();
    for r in results.iter() {
        println!(
            "{} {} {}: {} hosts={} partitions={} cl={} concurrency={} connections={} dist={} seed={} measured {:.1}s",
            r.target,
            r.workload,
            r.phase,
            r.mode,
            r.hosts.join(","),
            r.partitions,
            r.consistency,
            r.concurrency,
            r.connections,
            r.distribution,
            r.seed,
            r.duration_s
        );
    }
    print!("{}", report::summary_table(&results));
    for r in &results {
        if r.dropped > 0 {
            println!(
                "note: {} {}: {} requests due before the end were never sent (client fell behind the rate)",
                r.target, r.phase, r.dropped
            );
        }
        if r.empty_reads > 0 {
            println!(
                "note: {} {}: {} of {} reads found no row (populate first?)",
                r.target, r.phase, r.empty_reads, r.reads
            );
        }
        print!(
            "{} {}: client CPU {:.2}s = {:.2} cores ({:.0}% of the machine)",
            r.target,
            r.phase,
            r.client_cpu_s,
            r.client_cpu_cores,
            r.client_cpu_share * 100.0
        );
        match r.server_cpu_cores {
            Some(s) => println!(", server {s:.2} cores"),
            None => println!(),
        }
    }
    if let Some(c) = &comparison {
        print!("{}", report::comparison_table(c));
    }
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    if let Some(path) = &common.json {
        let file = ResultFile {
            tool: "shoal-bench",
            version: env!("CARGO_PKG_VERSION"),
            command_line: std::env::args().collect(),
            machine_cores: cores,
            results: results.clone(),
            comparison: comparison.clone(),
        };
        std::fs::write(path, report::to_json(&file))
            .with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    if let Some(path) = &common.svg {
        let title = format!("shoal-bench {}", common.workload);
        std::fs::write(path, report::render_svg(&title, &results))
            .with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    let ops: u64 = results.iter().map(|r| r.ops).sum();
    if ops == 0 {
        bail!("no operation succeeded");
    }
    Ok(())
}

/// A seed that differs between invocations: the clock's nanoseconds and the process id.
fn fresh_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ (u64::from(std::process::id()) << 40)
}
