//! Drives a workload against a cluster with the scylla driver: prepared statements,
//! token-aware routing (the driver's default policy once statements are prepared), a pool
//! of `connections` per host and `concurrency` in-flight requests.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use scylla::client::PoolSize;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::statement::Consistency;
use scylla::statement::prepared::PreparedStatement;
use tracing::{info, warn};

use crate::dist::{KeyDist, KeyGen};
use crate::report::{PhaseResult, progress_line};
use crate::schedule::{due_by, intended_offset};
use crate::stats::{self, LatencySummary, OpKind, Recorder, interval_point};
use crate::workload::{self, Replication, STRESS_COLUMN_SIZE, Table, Workload};

/// Everything about a run except where it goes.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    pub workload: Workload,
    pub keyspace: String,
    pub replication: Replication,
    pub consistency: Consistency,
    pub connections: usize,
    pub concurrency: usize,
    pub rate: Option<f64>,
    /// Open loop: the feeder's release period, at the least.
    pub release_every: Duration,
    /// Seeds the run phase's per-worker random choices.
    pub seed: u64,
    pub duration: Option<Duration>,
    pub ops: Option<u64>,
    pub warmup: Duration,
    pub partitions: u64,
    pub dist: KeyDist,
    pub read_ratio: f64,
    pub value_size: usize,
    pub points: u64,
    pub read_points: u32,
    pub create_schema: bool,
    pub populate: bool,
    pub run: bool,
    pub server_pid: Option<u32>,
}

#[derive(Debug, Clone)]
pub struct Target {
    pub label: String,
    pub hosts: Vec<String>,
}

/// Adds the default CQL port to bare host names.
pub fn normalize_host(h: &str) -> String {
    let h = h.trim();
    if h.starts_with('[') || h.matches(':').count() == 1 {
        h.to_string()
    } else if h.contains(':') {
        // A bare IPv6 address.
        format!("[{h}]:9042")
    } else {
        format!("{h}:9042")
    }
}

/// The CQL spelling (LOCAL_QUORUM), not the Rust variant name.
pub fn consistency_name(c: Consistency) -> String {
    let mut out = String::new();
    for (i, ch) in format!("{c:?}").chars().enumerate() {
        if ch.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(ch.to_ascii_uppercase());
    }
    out
}

pub fn dist_name(d: KeyDist) -> String {
    match d {
        KeyDist::Sequential => "sequential".into(),
        KeyDist::Uniform => "uniform".into(),
        KeyDist::Zipfian { exponent } => format!("zipfian({exponent})"),
    }
}

struct Statements {
    table: Table,
    insert: PreparedStatement,
    select: PreparedStatement,
    value_size: usize,
}

#[derive(Debug, Clone, Copy)]
enum Op {
    /// `point` is the populate point index of a time series; `None` writes "now".
    Write {
        partition: u64,
        point: Option<u64>,
    },
    Read {
        partition: u64,
    },
}

/// Where a phase's operations come from.
enum OpSource {
    Populate { points: u64, end_micros: i64 },
    Run { keys: KeyGen, read_fraction: f64 },
}

impl OpSource {
    fn op(&self, ticket: u64, rng: &mut SmallRng) -> Op {
        match self {
            OpSource::Populate { points, .. } => Op::Write {
                partition: ticket / points,
                point: Some(ticket % points),
            },
            OpSource::Run {
                keys,
                read_fraction,
            } => {
                let partition = keys.next(rng);
                if *read_fraction > 0.0 && rng.random::<f64>() < *read_fraction {
                    Op::Read { partition }
                } else {
                    Op::Write {
                        partition,
                        point: None,
                    }
                }
            }
        }
    }
}

fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

async fn execute(
    session: &Session,
    st: &Statements,
    op: Op,
    populate_end_micros: i64,
    points: u64,
    rng: &mut SmallRng,
) -> Result<OpKind, scylla::errors::ExecutionError> {
    match (st.table, op) {
        (Table::Standard1, Op::Write { partition, .. }) => {
            let key = workload::stress_key(partition).to_vec();
            let mut col = || workload::random_bytes(rng, STRESS_COLUMN_SIZE);
            let values = (key, col(), col(), col(), col(), col());
            session.execute_unpaged(&st.insert, values).await?;
            Ok(OpKind::Write)
        }
        (Table::Standard1, Op::Read { partition }) => {
            let key = workload::stress_key(partition).to_vec();
            let res = session.execute_unpaged(&st.select, (key,)).await?;
            Ok(OpKind::Read {
                rows: res.into_rows_result().map(|r| r.rows_num()).unwrap_or(0),
            })
        }
        (Table::Kv1, Op::Write { partition, .. }) => {
            let value = workload::random_bytes(rng, st.value_size);
            session
                .execute_unpaged(&st.insert, (partition as i64, value))
                .await?;
            Ok(OpKind::Write)
        }
        (Table::Kv1, Op::Read { partition }) => {
            let res = session
                .execute_unpaged(&st.select, (partition as i64,))
                .await?;
            Ok(OpKind::Read {
                rows: res.into_rows_result().map(|r| r.rows_num()).unwrap_or(0),
            })
        }
        (Table::Ts1, Op::Write { partition, point }) => {
            let ts = match point {
                Some(p) => workload::populate_point_ts(populate_end_micros, p, points),
                None => now_micros(),
            };
            let value: f64 = rng.random();
            session
                .execute_unpaged(&st.insert, (partition as i64, ts, value))
                .await?;
            Ok(OpKind::Write)
        }
        (Table::Ts1, Op::Read { partition }) => {
            let res = session
                .execute_unpaged(&st.select, (partition as i64,))
                .await?;
            Ok(OpKind::Read {
                rows: res.into_rows_result().map(|r| r.rows_num()).unwrap_or(0),
            })
        }
    }
}

pub async fn connect(hosts: &[String], connections: usize) -> Result<Session> {
    let pool = NonZeroUsize::new(connections.max(1)).expect("non-zero");
    SessionBuilder::new()
        .known_nodes(hosts)
        .pool_size(PoolSize::PerHost(pool))
        .build()
        .await
        .with_context(|| format!("connecting to {}", hosts.join(",")))
}

async fn create_schema(session: &Session, cfg: &BenchConfig) -> Result<()> {
    let ks = workload::create_keyspace(&cfg.keyspace, &cfg.replication);
    let table = workload::create_table(&cfg.keyspace, cfg.workload.table());
    for ddl in [ks, table] {
        info!(%ddl, "schema");
        session
            .query_unpaged(ddl.as_str(), &[])
            .await
            .with_context(|| format!("executing {ddl}"))?;
    }
    session
        .await_schema_agreement()
        .await
        .context("waiting for schema agreement")?;
    Ok(())
}

async fn prepare(session: &Session, cfg: &BenchConfig) -> Result<Statements> {
    let table = cfg.workload.table();
    let mut out = Vec::new();
    for q in [
        workload::insert_statement(&cfg.keyspace, table),
        workload::select_statement(&cfg.keyspace, table, cfg.read_points),
    ] {
        let mut p = session
            .prepare(q.as_str())
            .await
            .with_context(|| format!("preparing {q}"))?;
        p.set_consistency(cfg.consistency);
        // Retrying a timed-out write of the same cells is harmless, and lets the driver's
        // retry policy treat every statement alike.
        p.set_is_idempotent(true);
        if !p.is_token_aware() {
            warn!(query = %q, "server returned no partition-key indexes: token-aware routing is off");
        }
        out.push(p);
    }
    let select = out.pop().expect("two statements");
    let insert = out.pop().expect("two statements");
    Ok(Statements {
        table,
        insert,
        select,
        value_size: cfg.value_size,
    })
}

/// Populates and/or runs `cfg` against one target and returns one result per phase.
pub async fn bench_target(target: &Target, cfg: &BenchConfig) -> Result<Vec<PhaseResult>> {
    info!(target = %target.label, hosts = %target.hosts.join(","), "connecting");
    let session = Arc::new(connect(&target.hosts, cfg.connections).await?);
    if cfg.create_schema {
        create_schema(&session, cfg).await?;
    }
    let st = Arc::new(prepare(&session, cfg).await?);
    let mut results = Vec::new();
    if cfg.populate {
        let points = if cfg.workload.table() == Table::Ts1 {
            cfg.points.max(1)
        } else {
            1
        };
        let total = cfg.partitions.saturating_mul(points);
        let source = OpSource::Populate {
            points,
            end_micros: now_micros(),
        };
        let phase = PhaseSpec {
            name: "populate",
            total_ops: Some(total),
            ops_limit: None,
            duration: None,
            warmup: Duration::ZERO,
            rate: None,
        };
        results.push(run_phase(target, cfg, &session, &st, source, &phase).await?);
    }
    if cfg.run {
        let source = OpSource::Run {
            keys: KeyGen::new(cfg.dist, cfg.partitions),
            read_fraction: cfg.workload.read_fraction(cfg.read_ratio),
        };
        let duration = match (cfg.duration, cfg.ops) {
            (None, None) => Some(Duration::from_secs(10)),
            (d, _) => d,
        };
        let phase = PhaseSpec {
            name: "run",
            total_ops: None,
            ops_limit: cfg.ops,
            duration,
            warmup: cfg.warmup,
            rate: cfg.rate,
        };
        results.push(run_phase(target, cfg, &session, &st, source, &phase).await?);
    }
    Ok(results)
}

struct PhaseSpec {
    name: &'static str,
    /// Tickets beyond this are not issued (populate).
    total_ops: Option<u64>,
    /// Stop after this many measured operations.
    ops_limit: Option<u64>,
    duration: Option<Duration>,
    warmup: Duration,
    rate: Option<f64>,
}

struct Shared {
    recorder: Recorder,
    tickets: AtomicU64,
    measured_done: AtomicU64,
    measured_claimed: AtomicU64,
    stop: AtomicBool,
    errors_logged: AtomicU64,
    /// Operations handed to the driver; with `tickets` gives the open-loop backlog dropped
    /// when a run is cut off.
    started: AtomicU64,
    /// Open loop: the next ticket a worker takes, and the number of tickets in the run once
    /// the feeder has released the last one (`u64::MAX` until then).
    next_ticket: AtomicU64,
    last_ticket: AtomicU64,
}

async fn run_phase(
    target: &Target,
    cfg: &BenchConfig,
    session: &Arc<Session>,
    st: &Arc<Statements>,
    source: OpSource,
    spec: &PhaseSpec,
) -> Result<PhaseResult> {
    let label = format!("{} {} {}", target.label, cfg.workload, spec.name);
    info!(%label, concurrency = cfg.concurrency, rate = ?spec.rate, "starting");
    let shared = Arc::new(Shared {
        recorder: Recorder::default(),
        tickets: AtomicU64::new(0),
        measured_done: AtomicU64::new(0),
        measured_claimed: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        errors_logged: AtomicU64::new(0),
        started: AtomicU64::new(0),
        next_ticket: AtomicU64::new(0),
        last_ticket: AtomicU64::new(u64::MAX),
    });
    let source = Arc::new(source);
    let (points, populate_end) = match *source {
        OpSource::Populate {
            points, end_micros, ..
        } => (points, end_micros),
        OpSource::Run { .. } => (cfg.points.max(1), 0),
    };
    let start = Instant::now();
    let measure_start = start + spec.warmup;
    let end = spec.duration.map(|d| measure_start + d);

    // CPU is sampled when measurement starts so warm-up work is not charged.
    let cpu_at_measure = {
        let server_pid = cfg.server_pid;
        tokio::spawn(async move {
            tokio::time::sleep_until(measure_start.into()).await;
            (
                stats::process_cpu_time(),
                server_pid.and_then(|p| stats::cpu_time_of(&p.to_string())),
                Instant::now(),
            )
        })
    };

    // Open loop: one OS thread releases tickets as they fall due, waking at most every
    // `release_every` (default 200 µs): a wake-up per ticket cost the client more CPU than
    // the request itself. tokio's timer rounds sleeps up to whole milliseconds; a thread
    // sleep overshoots by tens of microseconds instead. Released tickets are semaphore
    // permits: one `add_permits` wakes as many idle workers as tickets fell due, and a busy
    // worker takes the next ticket without waiting (a channel behind a mutex cost a chain
    // of wake-ups per ticket). Ticket i's latency counts from its intended time, however
    // late it is released or taken. When the run ends, one extra permit per worker lets
    // each see a ticket past the last one and stop.
    let feed = spec.rate.map(|rate| {
        let permits = Arc::new(tokio::sync::Semaphore::new(0));
        let shared = shared.clone();
        let ops_cap = spec.total_ops;
        let workers = cfg.concurrency.max(1);
        let release_every = cfg.release_every;
        let sem = permits.clone();
        std::thread::spawn(move || {
            let mut released = 0u64;
            loop {
                let mut due = due_by(start.elapsed(), rate);
                let mut last = false;
                if let Some(e) = end {
                    // Tickets whose intended time is at or after the end are not sent.
                    let cap = due_by(e.saturating_duration_since(start), rate);
                    if due >= cap {
                        due = cap;
                        last = true;
                    }
                }
                if let Some(c) = ops_cap
                    && due >= c
                {
                    due = c;
                    last = true;
                }
                if due > released {
                    shared.tickets.store(due, Ordering::Relaxed);
                    sem.add_permits((due - released) as usize);
                    released = due;
                }
                if last || shared.stop.load(Ordering::Relaxed) {
                    shared.last_ticket.store(released, Ordering::Release);
                    sem.add_permits(workers);
                    break;
                }
                let next = start + intended_offset(released, rate);
                let wait = next.saturating_duration_since(Instant::now());
                std::thread::sleep(
                    wait.clamp(release_every, Duration::from_millis(50).max(release_every)),
                );
            }
        });
        (permits, rate)
    });

    let mut workers = Vec::with_capacity(cfg.concurrency);
    for w in 0..cfg.concurrency.max(1) {
        let shared = shared.clone();
        let session = session.clone();
        let st = st.clone();
        let source = source.clone();
        let feed = feed.clone();
        let total_ops = spec.total_ops;
        let ops_limit = spec.ops_limit;
        let seed = workload::splitmix64(cfg.seed);
        workers.push(tokio::spawn(async move {
            let mut rng = SmallRng::seed_from_u64(workload::splitmix64(seed ^ w as u64));
            loop {
                if shared.stop.load(Ordering::Relaxed) {
                    break;
                }
                let (ticket, intended) = match &feed {
                    Some((permits, rate)) => {
                        match permits.acquire().await {
                            Ok(p) => p.forget(),
                            Err(_) => break,
                        }
                        let ticket = shared.next_ticket.fetch_add(1, Ordering::AcqRel);
                        if ticket >= shared.last_ticket.load(Ordering::Acquire) {
                            break;
                        }
                        (ticket, start + intended_offset(ticket, *rate))
                    }
                    None => {
                        let ticket = shared.tickets.fetch_add(1, Ordering::Relaxed);
                        let now = Instant::now();
                        if total_ops.is_some_and(|t| ticket >= t) || end.is_some_and(|e| now >= e) {
                            break;
                        }
                        (ticket, now)
                    }
                };
                let measured = intended >= measure_start;
                // Claim a slot before sending so --ops is exact instead of overshooting by
                // the requests already in flight.
                if measured
                    && let Some(limit) = ops_limit
                    && shared.measured_claimed.fetch_add(1, Ordering::Relaxed) >= limit
                {
                    shared.stop.store(true, Ordering::Relaxed);
                    break;
                }
                shared.started.fetch_add(1, Ordering::Relaxed);
                let op = source.op(ticket, &mut rng);
                let res = execute(&session, &st, op, populate_end, points, &mut rng).await;
                let latency = intended.elapsed();
                match res {
                    Ok(kind) => shared.recorder.success(latency, kind, measured),
                    Err(e) => {
                        shared.recorder.error(measured);
                        let n = shared.errors_logged.fetch_add(1, Ordering::Relaxed);
                        if n < 5 || n.is_power_of_two() {
                            warn!(error = %e, errors = n + 1, "request failed");
                        }
                    }
                }
                if measured
                    && let Some(limit) = ops_limit
                    && shared.measured_done.fetch_add(1, Ordering::Relaxed) + 1 >= limit
                {
                    shared.stop.store(true, Ordering::Relaxed);
                }
            }
        }));
    }
    let all_done = futures::future::join_all(workers);
    tokio::pin!(all_done);

    let mut timeline = Vec::new();
    let mut ticker = tokio::time::interval_at(
        (start + Duration::from_secs(1)).into(),
        Duration::from_secs(1),
    );
    let mut last_tick = start;
    loop {
        tokio::select! {
            joined = &mut all_done => {
                for j in joined {
                    j.context("worker panicked")?;
                }
                break;
            }
            _ = ticker.tick() => {
                let now = Instant::now();
                // An overloaded open-loop run builds a backlog; drain it for a bounded time
                // rather than doubling the run, and report what was left unsent.
                if let (Some(e), Some(d)) = (end, spec.duration)
                    && now > e + (d / 10).max(Duration::from_secs(2))
                {
                    shared.stop.store(true, Ordering::Relaxed);
                }
                let (h, errors) = shared.recorder.take_interval();
                let p = interval_point(
                    (now - start).as_secs_f64(),
                    (now - last_tick).as_secs_f64(),
                    &h,
                    errors,
                    // Ticks land a hair after the boundary; judge by the interval's middle.
                    last_tick + (now - last_tick) / 2 < measure_start,
                );
                last_tick = now;
                println!("{}", progress_line(&label, &p));
                timeline.push(p);
            }
        }
    }
    let finished = Instant::now();
    let (h, errors) = shared.recorder.take_interval();
    let tail_len = (finished - last_tick).as_secs_f64();
    if let Some(prev) = timeline.last_mut().filter(|_| tail_len < 0.25) {
        // A few trailing milliseconds would plot as a wild ops/s spike; fold them into the
        // last full second instead.
        prev.ops += h.len();
        prev.errors += errors;
    } else if !h.is_empty() || errors > 0 {
        let p = interval_point(
            (finished - start).as_secs_f64(),
            (finished - last_tick).as_secs_f64(),
            &h,
            errors,
            last_tick + (finished - last_tick) / 2 < measure_start,
        );
        println!("{}", progress_line(&label, &p));
        timeline.push(p);
    }

    let cpu_end = stats::process_cpu_time();
    let server_cpu_end = cfg
        .server_pid
        .and_then(|p| stats::cpu_time_of(&p.to_string()));
    let (cpu_start, server_cpu_start, measured_from) = if finished > measure_start {
        cpu_at_measure.await.context("cpu sampler")?
    } else {
        cpu_at_measure.abort();
        (cpu_end, server_cpu_end, finished)
    };
    let wall = finished
        .saturating_duration_since(measured_from)
        .as_secs_f64();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let client_cpu_s = match (cpu_start, cpu_end) {
        (Some(a), Some(b)) => b.saturating_sub(a).as_secs_f64(),
        _ => 0.0,
    };
    let server_cpu_cores = match (server_cpu_start, server_cpu_end) {
        (Some(a), Some(b)) if wall > 0.0 => Some(b.saturating_sub(a).as_secs_f64() / wall),
        _ => None,
    };
    let totals = shared.recorder.totals();
    let latency = LatencySummary::of(&totals.histogram);
    let ops = latency.count;
    let client_cpu_cores = if wall > 0.0 { client_cpu_s / wall } else { 0.0 };
    Ok(PhaseResult {
        target: target.label.clone(),
        hosts: target.hosts.clone(),
        workload: cfg.workload.to_string(),
        phase: spec.name.to_string(),
        mode: match spec.rate {
            Some(r) => format!("open-loop {r}/s"),
            None => "closed-loop".into(),
        },
        concurrency: cfg.concurrency,
        connections: cfg.connections,
        consistency: consistency_name(cfg.consistency),
        distribution: if spec.name == "populate" {
            "sequential".into()
        } else {
            dist_name(cfg.dist)
        },
        partitions: cfg.partitions,
        seed: cfg.seed,
        warmup_s: spec.warmup.as_secs_f64(),
        duration_s: wall,
        ops,
        reads: totals.reads,
        writes: totals.writes,
        empty_reads: totals.empty_reads,
        errors: totals.errors,
        dropped: if spec.rate.is_some() {
            shared
                .tickets
                .load(Ordering::Relaxed)
                .saturating_sub(shared.started.load(Ordering::Relaxed))
        } else {
            0
        },
        ops_per_s: if wall > 0.0 { ops as f64 / wall } else { 0.0 },
        latency,
        client_cpu_s,
        client_cpu_cores,
        client_cpu_share: client_cpu_cores / cores as f64,
        server_cpu_cores,
        timeline,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consistency_names() {
        assert_eq!(consistency_name(Consistency::LocalQuorum), "LOCAL_QUORUM");
        assert_eq!(consistency_name(Consistency::One), "ONE");
    }

    #[test]
    fn hosts_get_default_port() {
        assert_eq!(normalize_host("127.0.0.1"), "127.0.0.1:9042");
        assert_eq!(normalize_host("10.0.0.1:19042"), "10.0.0.1:19042");
        assert_eq!(normalize_host("::1"), "[::1]:9042");
        assert_eq!(normalize_host("[::1]:9043"), "[::1]:9043");
        assert_eq!(normalize_host("db.local"), "db.local:9042");
    }

    #[test]
    fn populate_source_walks_every_point() {
        let src = OpSource::Populate {
            points: 3,
            end_micros: 0,
        };
        let mut rng = SmallRng::seed_from_u64(0);
        let ops: Vec<(u64, Option<u64>)> = (0..6)
            .map(|t| match src.op(t, &mut rng) {
                Op::Write { partition, point } => (partition, point),
                Op::Read { .. } => panic!("populate reads"),
            })
            .collect();
        assert_eq!(
            ops,
            vec![
                (0, Some(0)),
                (0, Some(1)),
                (0, Some(2)),
                (1, Some(0)),
                (1, Some(1)),
                (1, Some(2))
            ]
        );
    }

    #[test]
    fn run_source_mixes_by_ratio() {
        let src = OpSource::Run {
            keys: KeyGen::new(KeyDist::Uniform, 100),
            read_fraction: 0.25,
        };
        let mut rng = SmallRng::seed_from_u64(9);
        let reads = (0..10_000)
            .filter(|&t| matches!(src.op(t, &mut rng), Op::Read { .. }))
            .count();
        assert!((2_200..2_800).contains(&reads), "{reads}");
    }
}
