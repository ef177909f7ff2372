//! A small metrics registry rendered as Prometheus text (exposition format 0.0.4).
//!
//! Hand-written rather than the `prometheus` crate: the series are fixed (ops x consistency
//! levels x fixed buckets), so plain atomics in arrays cover it with no allocation on the
//! recording path, no registry lock, and no dependency tree. Recording is a few relaxed
//! atomic adds; rendering reads the same atomics (kubernetes.md §3 rule 16: metrics without
//! JMX or a sidecar).
//!
//! Recording hook for the CQL server: [`Metrics::record_request`] takes raw protocol codes
//! (opcode, consistency, error code) so an adapter in the node crate can forward whatever
//! observer trait the CQL layer exposes without translating anything.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use crate::lifecycle::{Lifecycle, NodeState};

/// Request kinds with their own series; everything else (STARTUP, OPTIONS, REGISTER...) is
/// counted by the server's total.
pub const OPS: [(&str, u8); 4] = [
    ("QUERY", 0x07),
    ("PREPARE", 0x09),
    ("EXECUTE", 0x0A),
    ("BATCH", 0x0D),
];

/// Consistency levels by protocol code; the last slot is "none given" (PREPARE) or unknown.
pub const CONSISTENCIES: [&str; 12] = [
    "ANY",
    "ONE",
    "TWO",
    "THREE",
    "QUORUM",
    "ALL",
    "LOCAL_QUORUM",
    "EACH_QUORUM",
    "SERIAL",
    "LOCAL_SERIAL",
    "LOCAL_ONE",
    "NONE",
];

/// CQL error codes (native protocol spec §9); the last slot counts anything else.
pub const ERROR_CODES: [(i32, &str); 21] = [
    (0x0000, "server_error"),
    (0x000A, "protocol_error"),
    (0x0100, "bad_credentials"),
    (0x1000, "unavailable"),
    (0x1001, "overloaded"),
    (0x1002, "is_bootstrapping"),
    (0x1003, "truncate_error"),
    (0x1100, "write_timeout"),
    (0x1200, "read_timeout"),
    (0x1300, "read_failure"),
    (0x1400, "function_failure"),
    (0x1500, "write_failure"),
    (0x1600, "cdc_write_failure"),
    (0x1700, "cas_write_unknown"),
    (0x2000, "syntax_error"),
    (0x2100, "unauthorized"),
    (0x2200, "invalid"),
    (0x2300, "config_error"),
    (0x2400, "already_exists"),
    (0x2500, "unprepared"),
    (-1, "other"),
];

/// Internode requests counted where they are received (Cassandra's verb names), by
/// message type id (`shoal_gossip::internode::MessageType::id`).
pub const INTERNODE_VERBS: [(&str, u8); 10] = [
    ("MUTATION_REQ", 0x10),
    ("READ_REQ", 0x12),
    ("RANGE_REQ", 0x14),
    ("HINT_REQ", 0x16),
    ("TRUNCATE_REQ", 0x18),
    ("PAXOS_PREPARE_REQ", 0x20),
    ("PAXOS_PROPOSE_REQ", 0x22),
    ("PAXOS_COMMIT_REQ", 0x24),
    ("SCHEMA_PULL_REQ", 0x30),
    ("SCHEMA_PUSH_REQ", 0x32),
];

/// Upper bounds in seconds: 100 µs .. 10 s covers a memtable hit to a timed-out request.
pub const BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// A fixed-bucket histogram. Buckets are stored non-cumulative (one add per record) and
/// summed when rendered.
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS.len() + 1],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            count: AtomicU64::new(0),
            sum_nanos: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    pub fn record(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = BUCKETS
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(BUCKETS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(
            u64::try_from(d.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

/// Values the node copies in from other components (engine stats, server stats, gossip).
#[derive(Default)]
pub struct Gauges {
    pub connected_clients: AtomicI64,
    /// Every CQL request frame the server handled (all opcodes).
    pub cql_requests: AtomicU64,
    pub memtable_bytes: AtomicI64,
    pub memtable_partitions: AtomicI64,
    /// Not reported by the engine yet: stays 0 until `EngineStats` has it.
    pub pending_flushes: AtomicI64,
    /// Not reported by the engine yet: stays 0 until `EngineStats` has it.
    pub pending_compactions: AtomicI64,
    pub sstables: AtomicI64,
    pub flushes: AtomicU64,
    pub commitlog_segments: AtomicI64,
    pub writes: AtomicU64,
    pub reads: AtomicU64,
    pub replayed_entries: AtomicU64,
    /// Hints waiting for delivery: 0 until hinted handoff exists.
    pub hints_pending: AtomicI64,
    /// Gossip view: this node alone (1 live, 0 down) until the cluster work sets them.
    pub gossip_live_members: AtomicI64,
    pub gossip_down_members: AtomicI64,
}

pub struct Metrics {
    requests: [[Histogram; CONSISTENCIES.len()]; OPS.len()],
    errors: [[AtomicU64; ERROR_CODES.len()]; OPS.len()],
    timeouts: [AtomicU64; OPS.len()],
    dropped_messages: AtomicU64,
    internode_received: [AtomicU64; INTERNODE_VERBS.len()],
    pub gauges: Gauges,
}

impl Default for Metrics {
    fn default() -> Self {
        let gauges = Gauges::default();
        gauges.gossip_live_members.store(1, Ordering::Relaxed);
        Metrics {
            requests: std::array::from_fn(|_| std::array::from_fn(|_| Histogram::default())),
            errors: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
            timeouts: std::array::from_fn(|_| AtomicU64::new(0)),
            dropped_messages: AtomicU64::new(0),
            internode_received: std::array::from_fn(|_| AtomicU64::new(0)),
            gauges,
        }
    }
}

fn op_index(opcode: u8) -> Option<usize> {
    OPS.iter().position(|&(_, code)| code == opcode)
}

fn error_index(code: i32) -> usize {
    ERROR_CODES
        .iter()
        .position(|&(c, _)| c == code)
        .unwrap_or(ERROR_CODES.len() - 1)
}

impl Metrics {
    /// Records one finished request. `opcode`: the request frame's opcode (other opcodes are
    /// ignored); `consistency`: the protocol code of its consistency level, `None` when the
    /// request has none; `error_code`: the CQL error code sent back, `None` on success.
    pub fn record_request(
        &self,
        opcode: u8,
        consistency: Option<u16>,
        elapsed: Duration,
        error_code: Option<i32>,
    ) {
        let Some(op) = op_index(opcode) else { return };
        let cl = consistency
            .map(usize::from)
            .filter(|&c| c < CONSISTENCIES.len() - 1)
            .unwrap_or(CONSISTENCIES.len() - 1);
        self.requests[op][cl].record(elapsed);
        if let Some(code) = error_code {
            self.errors[op][error_index(code)].fetch_add(1, Ordering::Relaxed);
            if code == 0x1100 || code == 0x1200 {
                self.timeouts[op].fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// A message dropped because it waited longer than its timeout (internode work later).
    /// An internode message of type `type_id` arrived; only [`INTERNODE_VERBS`] are counted.
    pub fn record_internode_message(&self, type_id: u8) {
        if let Some(i) = INTERNODE_VERBS.iter().position(|&(_, id)| id == type_id) {
            self.internode_received[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Internode requests of `verb` received so far (0 for an unknown verb).
    pub fn internode_received(&self, verb: &str) -> u64 {
        INTERNODE_VERBS
            .iter()
            .position(|&(v, _)| v == verb)
            .map_or(0, |i| self.internode_received[i].load(Ordering::Relaxed))
    }

    pub fn record_dropped_message(&self) {
        self.dropped_messages.fetch_add(1, Ordering::Relaxed);
    }

    /// Prometheus text exposition of every series.
    pub fn render(&self, lifecycle: &Lifecycle) -> String {
        let mut out = String::with_capacity(8 * 1024);
        let g = &self.gauges;
        let load_i = |a: &AtomicI64| a.load(Ordering::Relaxed);
        let load_u = |a: &AtomicU64| a.load(Ordering::Relaxed);

        head(
            &mut out,
            "shoal_client_request_duration_seconds",
            "histogram",
            "CQL request latency by operation and consistency level.",
        );
        for (oi, (op, _)) in OPS.iter().enumerate() {
            for (ci, cl) in CONSISTENCIES.iter().enumerate() {
                let h = &self.requests[oi][ci];
                let count = h.count();
                if count == 0 {
                    continue;
                }
                let mut cumulative = 0;
                for (bi, bound) in BUCKETS.iter().enumerate() {
                    cumulative += h.buckets[bi].load(Ordering::Relaxed);
                    let _ = writeln!(
                        out,
                        "shoal_client_request_duration_seconds_bucket{{op=\"{op}\",cl=\"{cl}\",le=\"{bound}\"}} {cumulative}"
                    );
                }
                let _ = writeln!(
                    out,
                    "shoal_client_request_duration_seconds_bucket{{op=\"{op}\",cl=\"{cl}\",le=\"+Inf\"}} {count}"
                );
                let sum = h.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
                let _ = writeln!(
                    out,
                    "shoal_client_request_duration_seconds_sum{{op=\"{op}\",cl=\"{cl}\"}} {sum}"
                );
                let _ = writeln!(
                    out,
                    "shoal_client_request_duration_seconds_count{{op=\"{op}\",cl=\"{cl}\"}} {count}"
                );
            }
        }

        head(
            &mut out,
            "shoal_client_requests_total",
            "counter",
            "CQL requests by operation and consistency level.",
        );
        for (oi, (op, _)) in OPS.iter().enumerate() {
            for (ci, cl) in CONSISTENCIES.iter().enumerate() {
                let count = self.requests[oi][ci].count();
                if count > 0 {
                    let _ = writeln!(
                        out,
                        "shoal_client_requests_total{{op=\"{op}\",cl=\"{cl}\"}} {count}"
                    );
                }
            }
        }

        head(
            &mut out,
            "shoal_client_request_errors_total",
            "counter",
            "CQL error responses by operation and error code.",
        );
        for (oi, (op, _)) in OPS.iter().enumerate() {
            for (ei, (code, name)) in ERROR_CODES.iter().enumerate() {
                let n = load_u(&self.errors[oi][ei]);
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "shoal_client_request_errors_total{{op=\"{op}\",code=\"{code:#06x}\",error=\"{name}\"}} {n}"
                    );
                }
            }
        }

        head(
            &mut out,
            "shoal_client_request_timeouts_total",
            "counter",
            "CQL read/write timeouts by operation.",
        );
        for (oi, (op, _)) in OPS.iter().enumerate() {
            let _ = writeln!(
                out,
                "shoal_client_request_timeouts_total{{op=\"{op}\"}} {}",
                load_u(&self.timeouts[oi])
            );
        }

        head(
            &mut out,
            "shoal_internode_messages_received_total",
            "counter",
            "Internode requests this node received, by verb.",
        );
        for (i, (verb, _)) in INTERNODE_VERBS.iter().enumerate() {
            let _ = writeln!(
                out,
                "shoal_internode_messages_received_total{{verb=\"{verb}\"}} {}",
                load_u(&self.internode_received[i])
            );
        }

        let counters: [(&str, &str, u64); 6] = [
            (
                "shoal_cql_requests_total",
                "CQL request frames handled (every opcode).",
                load_u(&g.cql_requests),
            ),
            (
                "shoal_dropped_messages_total",
                "Messages dropped after their timeout expired.",
                load_u(&self.dropped_messages),
            ),
            (
                "shoal_storage_writes_total",
                "Mutation batches applied by the storage engine.",
                load_u(&g.writes),
            ),
            (
                "shoal_storage_reads_total",
                "Reads served by the storage engine.",
                load_u(&g.reads),
            ),
            (
                "shoal_memtable_flushes_total",
                "Memtables flushed to SSTables.",
                load_u(&g.flushes),
            ),
            (
                "shoal_commitlog_replayed_entries",
                "Commit-log entries replayed at the last start.",
                load_u(&g.replayed_entries),
            ),
        ];
        for (name, help, v) in counters {
            let kind = if name.ends_with("_total") {
                "counter"
            } else {
                "gauge"
            };
            head(&mut out, name, kind, help);
            let _ = writeln!(out, "{name} {v}");
        }

        let state = lifecycle.state();
        let gauges: [(&str, &str, i64); 14] = [
            (
                "shoal_connected_native_clients",
                "Open CQL connections.",
                load_i(&g.connected_clients),
            ),
            (
                "shoal_memtable_bytes",
                "Bytes held by all memtables.",
                load_i(&g.memtable_bytes),
            ),
            (
                "shoal_memtable_partitions",
                "Partitions held by all memtables.",
                load_i(&g.memtable_partitions),
            ),
            (
                "shoal_pending_flushes",
                "Memtable flushes waiting to run (not reported by the engine yet: 0).",
                load_i(&g.pending_flushes),
            ),
            (
                "shoal_pending_compactions",
                "Compactions waiting to run (not reported by the engine yet: 0).",
                load_i(&g.pending_compactions),
            ),
            (
                "shoal_sstables",
                "Live SSTables over all tables.",
                load_i(&g.sstables),
            ),
            (
                "shoal_commitlog_segments",
                "Commit-log segment files on disk.",
                load_i(&g.commitlog_segments),
            ),
            (
                "shoal_hints_pending",
                "Hints waiting for delivery (no hinted handoff yet: 0).",
                load_i(&g.hints_pending),
            ),
            (
                "shoal_gossip_live_members",
                "Members this node sees alive, itself included.",
                load_i(&g.gossip_live_members),
            ),
            (
                "shoal_gossip_down_members",
                "Members this node sees down.",
                load_i(&g.gossip_down_members),
            ),
            (
                "shoal_node_started",
                "1 once start-up (commit-log replay, join) finished.",
                lifecycle.started() as i64,
            ),
            (
                "shoal_node_ready",
                "1 while joined, serving CQL and not draining.",
                lifecycle.ready() as i64,
            ),
            (
                "shoal_node_draining",
                "1 while draining or drained.",
                (state >= NodeState::Draining) as i64,
            ),
            (
                "shoal_runtime_heartbeat_age_seconds",
                "Seconds since the request runtime last ticked.",
                lifecycle.heartbeat_age().as_secs() as i64,
            ),
        ];
        for (name, help, v) in gauges {
            head(&mut out, name, "gauge", help);
            let _ = writeln!(out, "{name} {v}");
        }
        out
    }
}

fn head(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_with<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
        text.lines().filter(|l| l.starts_with(prefix)).collect()
    }

    #[test]
    fn counts_internode_requests_by_verb() {
        let m = Metrics::default();
        m.record_internode_message(0x10);
        m.record_internode_message(0x10);
        m.record_internode_message(0x12);
        m.record_internode_message(0x01); // gossip SYN: not a counted verb
        m.record_internode_message(0x11); // a response: not counted
        assert_eq!(m.internode_received("MUTATION_REQ"), 2);
        assert_eq!(m.internode_received("READ_REQ"), 1);
        assert_eq!(m.internode_received("GOSSIP"), 0);
        let text = m.render(&Lifecycle::default());
        assert!(text.contains("shoal_internode_messages_received_total{verb=\"MUTATION_REQ\"} 2"));
        assert!(text.contains("shoal_internode_messages_received_total{verb=\"READ_REQ\"} 1"));
        assert!(text.contains("shoal_internode_messages_received_total{verb=\"HINT_REQ\"} 0"));
    }

    #[test]
    fn renders_histograms_cumulatively() {
        let m = Metrics::default();
        m.record_request(0x07, Some(1), Duration::from_micros(50), None);
        m.record_request(0x07, Some(1), Duration::from_millis(3), None);
        m.record_request(0x07, Some(1), Duration::from_secs(60), Some(0x1200));
        m.record_request(0x0A, Some(6), Duration::from_millis(1), Some(0x2200));
        m.record_request(0x09, None, Duration::from_millis(1), None);
        m.record_request(0x01, None, Duration::from_millis(1), None); // STARTUP: not a series
        let text = m.render(&Lifecycle::default());

        let q: Vec<_> = lines_with(
            &text,
            "shoal_client_request_duration_seconds_bucket{op=\"QUERY\",cl=\"ONE\"",
        );
        assert_eq!(q.len(), BUCKETS.len() + 1);
        assert!(q[0].ends_with("le=\"0.0001\"} 1"), "{}", q[0]);
        assert!(q.iter().any(|l| l.ends_with("le=\"0.005\"} 2")));
        assert!(q.iter().any(|l| l.ends_with("le=\"10\"} 2")));
        assert!(q.last().unwrap().ends_with("le=\"+Inf\"} 3"));
        assert!(text.contains("shoal_client_requests_total{op=\"EXECUTE\",cl=\"LOCAL_QUORUM\"} 1"));
        assert!(text.contains("shoal_client_requests_total{op=\"PREPARE\",cl=\"NONE\"} 1"));
        assert!(text.contains("shoal_client_request_errors_total{op=\"QUERY\",code=\"0x1200\",error=\"read_timeout\"} 1"));
        assert!(text.contains(
            "shoal_client_request_errors_total{op=\"EXECUTE\",code=\"0x2200\",error=\"invalid\"} 1"
        ));
        assert!(text.contains("shoal_client_request_timeouts_total{op=\"QUERY\"} 1"));
        assert!(text.contains("shoal_gossip_live_members 1"));
        assert!(!text.contains("STARTUP"));
    }

    #[test]
    fn output_is_well_formed_exposition() {
        let m = Metrics::default();
        m.record_request(0x0D, Some(99), Duration::ZERO, Some(12345));
        let text = m.render(&Lifecycle::default());
        let mut declared = std::collections::HashSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let name = rest.split(' ').next().unwrap();
                assert!(declared.insert(name.to_string()), "{name} declared twice");
                continue;
            }
            if line.starts_with("# HELP ") {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').unwrap();
            assert!(value.parse::<f64>().is_ok(), "bad value in {line}");
            let name = series.split('{').next().unwrap();
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s).filter(|f| declared.contains(*f)))
                .unwrap_or(name);
            assert!(declared.contains(family), "{name} has no TYPE line");
            assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
        }
        assert!(
            text.contains("cl=\"NONE\""),
            "unknown consistency falls into NONE"
        );
        assert!(
            text.contains("error=\"other\""),
            "unknown error codes are counted"
        );
    }
}
