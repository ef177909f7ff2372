//! The protocol over a simulated network: acceptors in memory, messages delayed at
//! random and lost at random, many proposers racing; the histories they produce are
//! checked for linearizability.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use shoal_cql::coordinator::BoxFuture;
use shoal_cql::error::{Consistency, CqlError, CqlResult};
use shoal_cql::paxos::CasRequest;
use shoal_engine::{
    Cell, CellValue, Mutation, PartitionData, PartitionRange, ReadCommand, ReadResult, Row, TableId,
};
use shoal_gossip::ring::HostId;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::ballot::BallotGen;
use super::codec::{
    Request, Response, decode_request, decode_response, encode_request, encode_response,
};
use super::proposer::{DataReader, Plan, Proposer, Timeouts, Transport, TransportError};
use super::state::{AcceptorState, PartitionRef};
use shoal_tests::linearizability::{CasOp, CasOutcome, check_cas_register};

const TABLE: TableId = TableId([9; 16]);
const KEY: &[u8] = b"register";

#[derive(Default)]
struct SimNode {
    paxos: AcceptorState,
    /// The register: (value, write timestamp), last write wins.
    data: Option<(i64, i64)>,
}

struct Net {
    nodes: Vec<SimNode>,
    rng: StdRng,
    drop_rate: f64,
    max_delay_ms: u64,
    down: Vec<bool>,
}

#[derive(Clone)]
struct SimNet(Arc<Mutex<Net>>);

fn host(i: usize) -> HostId {
    HostId([i as u8 + 1; 16])
}

fn index(h: HostId) -> usize {
    h.0[0] as usize - 1
}

impl SimNet {
    fn new(n: usize, seed: u64, drop_rate: f64, max_delay_ms: u64) -> SimNet {
        SimNet(Arc::new(Mutex::new(Net {
            nodes: (0..n).map(|_| SimNode::default()).collect(),
            rng: StdRng::seed_from_u64(seed),
            drop_rate,
            max_delay_ms,
            down: vec![false; n],
        })))
    }

    /// A delay, or `None` when the message is lost (or its node is down).
    fn hop(&self, node: usize) -> Option<Duration> {
        let mut net = self.0.lock().unwrap();
        if net.down[node] {
            return None;
        }
        let p = net.drop_rate;
        if net.rng.random_bool(p) {
            return None;
        }
        let max = net.max_delay_ms;
        Some(Duration::from_micros(net.rng.random_range(0..=max * 1000)))
    }

    /// One acceptor step, atomically (as the store's stripe lock makes it).
    fn deliver(&self, node: usize, req: Request) -> Response {
        let mut net = self.0.lock().unwrap();
        let n = &mut net.nodes[node];
        match req {
            Request::Prepare { ballot, .. } => Response::Prepare(n.paxos.prepare(ballot).0),
            Request::Propose { proposal, .. } => Response::Propose {
                accepted: n.paxos.propose(&proposal),
            },
            Request::Commit { commit, .. } => {
                for m in &commit.update {
                    for r in &m.rows {
                        for c in &r.cells {
                            if let CellValue::Live { value, .. } = &c.value {
                                let v = i64::from_be_bytes(value[..].try_into().unwrap());
                                if n.data.is_none_or(|(_, ts)| c.timestamp > ts) {
                                    n.data = Some((v, c.timestamp));
                                }
                            }
                        }
                    }
                }
                n.paxos.commit(&commit);
                Response::Commit
            }
        }
    }
}

impl Transport for SimNet {
    fn send(
        &self,
        to: HostId,
        req: Request,
    ) -> BoxFuture<'static, Result<Response, TransportError>> {
        let net = self.clone();
        Box::pin(async move {
            let node = index(to);
            // Through the real codecs, so the simulation exercises them too.
            let req = decode_request(&encode_request(&req)).expect("request codec");
            let Some(d) = net.hop(node) else {
                return std::future::pending().await;
            };
            tokio::time::sleep(d).await;
            let resp = net.deliver(node, req);
            let Some(d) = net.hop(node) else {
                return std::future::pending().await;
            };
            tokio::time::sleep(d).await;
            Ok(decode_response(&encode_response(&resp)).expect("response codec"))
        })
    }
}

/// A quorum read of the register's data, lossy like everything else.
struct SimReader {
    net: SimNet,
    n: usize,
}

impl DataReader for SimReader {
    fn read<'a>(
        &'a self,
        _cmd: &'a ReadCommand,
        consistency: Consistency,
    ) -> BoxFuture<'a, CqlResult<ReadResult>> {
        Box::pin(async move {
            let need = self.n / 2 + 1;
            let (tx, mut rx) = mpsc::unbounded_channel();
            for node in 0..self.n {
                let (net, tx) = (self.net.clone(), tx.clone());
                tokio::spawn(async move {
                    let (Some(a), Some(b)) = (net.hop(node), net.hop(node)) else {
                        return;
                    };
                    tokio::time::sleep(a).await;
                    let v = net.0.lock().unwrap().nodes[node].data;
                    tokio::time::sleep(b).await;
                    let _ = tx.send(v);
                });
            }
            drop(tx);
            let deadline = Instant::now() + Duration::from_millis(2000);
            let mut best: Option<(i64, i64)> = None;
            for got in 0..need {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(v)) => {
                        if v.is_some_and(|(_, ts)| best.is_none_or(|(_, b)| ts > b)) {
                            best = v;
                        }
                    }
                    _ => {
                        return Err(CqlError::ReadTimeout {
                            message: "read timed out".into(),
                            consistency,
                            received: got as i32,
                            block_for: need as i32,
                            data_present: false,
                        });
                    }
                }
            }
            Ok(ReadResult {
                partitions: best
                    .map(|(v, ts)| register_partition(v, ts))
                    .into_iter()
                    .collect(),
                ..Default::default()
            })
        })
    }
}

fn register_row(v: i64, ts: i64) -> Row {
    Row {
        cells: vec![Cell {
            column: 0,
            path: None,
            timestamp: ts,
            value: CellValue::Live {
                value: Bytes::copy_from_slice(&v.to_be_bytes()),
                ttl: None,
            },
        }],
        ..Default::default()
    }
}

fn register_partition(v: i64, ts: i64) -> PartitionData {
    PartitionData {
        token: 0,
        key: Bytes::from_static(KEY),
        partition_deletion: None,
        range_tombstones: Vec::new(),
        static_row: None,
        rows: vec![register_row(v, ts)],
    }
}

fn register_value(p: &PartitionData) -> i64 {
    p.rows
        .first()
        .and_then(|r| r.cells.first())
        .and_then(|c| match &c.value {
            CellValue::Live { value, .. } => Some(i64::from_be_bytes(value[..].try_into().ok()?)),
            _ => None,
        })
        .unwrap_or(0)
}

fn read_cmd() -> ReadCommand {
    ReadCommand {
        table: TABLE,
        partitions: PartitionRange::Single {
            token: 0,
            key: Bytes::from_static(KEY),
        },
        slices: Vec::new(),
        reversed: false,
        start_after_row: None,
        row_limit: usize::MAX,
        per_partition_limit: usize::MAX,
        partition_limit: 1,
        include_tombstones: false,
        now: 0,
    }
}

fn plan(n: usize, down: &[usize]) -> Plan {
    let all: Vec<HostId> = (0..n).map(host).collect();
    let live: Vec<HostId> = (0..n).filter(|i| !down.contains(i)).map(host).collect();
    Plan {
        required: n / 2 + 1,
        participants: all,
        commit_targets: live.iter().map(|h| (*h, true)).collect(),
        live,
        commit_consistency: Consistency::Quorum,
        commit_block_for: n / 2 + 1,
    }
}

// The register checker is shared with the real-process test (tests/tests/cluster_lwt.rs).

fn increment<'a>(expected: i64, seen: &'a mut Option<i64>) -> CasRequest<'a> {
    CasRequest {
        table: TABLE,
        token: 0,
        key: Bytes::from_static(KEY),
        read: read_cmd(),
        serial: Consistency::Serial,
        commit: Consistency::Quorum,
        decide: Box::new(move |p: &PartitionData, ballot: i64| {
            let v = register_value(p);
            *seen = Some(v);
            if v != expected {
                return Ok(None);
            }
            Ok(Some(vec![Mutation {
                table: TABLE,
                token: 0,
                key: Bytes::from_static(KEY),
                partition_deletion: None,
                range_tombstones: Vec::new(),
                static_row: None,
                rows: vec![register_row(expected + 1, ballot)],
            }]))
        }),
    }
}

fn proposer(net: &SimNet, node: usize) -> Proposer<SimNet> {
    Proposer {
        transport: Arc::new(net.clone()),
        ballots: Arc::new(BallotGen::new(node as u64 + 1)),
        timeouts: Timeouts {
            cas_contention: Duration::from_millis(1000),
            request: Duration::from_millis(200),
            max_backoff: Duration::from_millis(100),
        },
    }
}

async fn run_history(
    n: usize,
    clients: usize,
    ops_per_client: usize,
    seed: u64,
    drop_rate: f64,
) -> (Vec<CasOp>, i64) {
    let net = SimNet::new(n, seed, drop_rate, 5);
    let start = Instant::now();
    let history = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (net, history) = (net.clone(), history.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(seed ^ ((c as u64 + 1) * 7919));
            let reader = SimReader {
                net: net.clone(),
                n,
            };
            let proposers: Vec<_> = (0..n).map(|i| proposer(&net, i)).collect();
            let mut known = 0i64;
            for _ in 0..ops_per_client {
                let p = &proposers[rng.random_range(0..n)];
                let invoke = start.elapsed().as_nanos() as u64;
                let expected = known;
                let mut seen = None;
                let r = p
                    .cas(&plan(n, &[]), &reader, increment(known, &mut seen))
                    .await;
                let complete = start.elapsed().as_nanos() as u64;
                let outcome = match (r, seen) {
                    (Ok(()), Some(v)) if v == known => CasOutcome::Applied,
                    (Ok(()), Some(v)) => CasOutcome::NotApplied(v),
                    (Ok(()), None) => panic!("cas finished without deciding"),
                    (Err(e @ CqlError::Unavailable { .. }), _) => panic!("{e:?}"),
                    // A Paxos phase (write type CAS), the read, or the commit (SIMPLE)
                    // timed out: the outcome is unknown.
                    (Err(_), _) => CasOutcome::Unknown,
                };
                match outcome {
                    CasOutcome::Applied => known += 1,
                    CasOutcome::NotApplied(v) => known = v,
                    CasOutcome::Unknown => {}
                }
                history.lock().unwrap().push(CasOp {
                    invoke,
                    complete,
                    expected,
                    outcome,
                });
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // Heal the network and read the final value serially: this also completes any
    // proposal left in progress.
    net.0.lock().unwrap().drop_rate = 0.0;
    let reader = SimReader {
        net: net.clone(),
        n,
    };
    let part = PartitionRef {
        table: TABLE,
        token: 0,
        key: Bytes::from_static(KEY),
    };
    let r = proposer(&net, 0)
        .serial_read(
            &plan(n, &[]),
            &reader,
            &part,
            &read_cmd(),
            Consistency::Serial,
        )
        .await
        .expect("final serial read");
    let final_value = r.partitions.first().map_or(0, register_value);
    let ops = history.lock().unwrap().clone();
    (ops, final_value)
}

#[test]
fn checker_accepts_a_sequential_history_and_rejects_anomalies() {
    let op = |invoke, complete, expected, outcome| CasOp {
        invoke,
        complete,
        expected,
        outcome,
    };
    use CasOutcome::*;
    let good = [
        op(0, 10, 0, Applied),
        op(20, 30, 1, Applied),
        op(25, 35, 0, NotApplied(2)),
        op(40, 50, 2, Unknown),
        op(60, 70, 2, NotApplied(3)),
    ];
    check_cas_register(&good, 0, 3).unwrap();
    // Two increments from the same value both applied.
    assert!(check_cas_register(&[op(0, 10, 0, Applied), op(0, 10, 0, Applied)], 0, 1).is_err());
    // Real-time order broken: 1→2 finished before 0→1 began.
    assert!(check_cas_register(&[op(20, 30, 0, Applied), op(0, 10, 1, Applied)], 0, 2).is_err());
    // A stale read: 1 was overwritten before the read began.
    let stale = [
        op(0, 10, 0, Applied),
        op(20, 30, 1, Applied),
        op(40, 50, 0, NotApplied(1)),
    ];
    assert!(check_cas_register(&stale, 0, 2).is_err());
    // A value that was never written.
    assert!(check_cas_register(&[op(0, 10, 0, NotApplied(7))], 0, 0).is_err());
    // A gap in the chain.
    assert!(check_cas_register(&[op(0, 10, 0, Applied)], 0, 2).is_err());
}

#[tokio::test(start_paused = true)]
async fn concurrent_increments_over_lossy_network_are_linearizable() {
    for (seed, n, drop_rate) in [(1, 3, 0.0), (2, 3, 0.1), (3, 5, 0.15), (4, 5, 0.05)] {
        let (ops, final_value) = run_history(n, 6, 30, seed, drop_rate).await;
        let applied = ops
            .iter()
            .filter(|o| o.outcome == CasOutcome::Applied)
            .count();
        let unknown = ops
            .iter()
            .filter(|o| o.outcome == CasOutcome::Unknown)
            .count();
        eprintln!(
            "seed {seed}: {n} acceptors, drop {drop_rate}: {} ops, {applied} applied, {unknown} unknown, final {final_value}",
            ops.len()
        );
        assert!(applied > 0, "some increments must succeed");
        if let Err(e) = check_cas_register(&ops, 0, final_value) {
            panic!("seed {seed}: not linearizable: {e}\n{ops:#?}");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn quorum_down_is_unavailable_and_minority_down_still_works() {
    let net = SimNet::new(3, 9, 0.0, 1);
    let reader = SimReader {
        net: net.clone(),
        n: 3,
    };
    let p = proposer(&net, 0);
    net.0.lock().unwrap().down[2] = true;
    let mut seen = None;
    p.cas(&plan(3, &[2]), &reader, increment(0, &mut seen))
        .await
        .unwrap();
    assert_eq!(seen, Some(0));
    net.0.lock().unwrap().down[1] = true;
    let mut seen = None;
    let e = p
        .cas(&plan(3, &[1, 2]), &reader, increment(1, &mut seen))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            CqlError::Unavailable {
                required: 2,
                alive: 1,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(seen, None, "nothing is read or decided when unavailable");
}

#[tokio::test(start_paused = true)]
async fn accepted_but_uncommitted_proposal_is_completed_by_the_next_round() {
    // A proposer got its value accepted by one acceptor only, then vanished.
    let net = SimNet::new(3, 5, 0.0, 1);
    let b = BallotGen::new(77).next(super::proposer::now_micros(), i64::MIN);
    let part = PartitionRef {
        table: TABLE,
        token: 0,
        key: Bytes::from_static(KEY),
    };
    let orphan = super::state::Commit {
        ballot: b,
        update: vec![Mutation {
            table: TABLE,
            token: 0,
            key: Bytes::from_static(KEY),
            partition_deletion: None,
            range_tombstones: Vec::new(),
            static_row: None,
            rows: vec![register_row(1, b.micros)],
        }],
    };
    net.deliver(
        0,
        Request::Prepare {
            part: part.clone(),
            ballot: b,
        },
    );
    net.deliver(
        0,
        Request::Propose {
            part: part.clone(),
            proposal: orphan,
        },
    );
    // With acceptor 2 down, every quorum includes acceptor 0, which reports the orphan:
    // a serial read must finish it (re-propose, commit) before reading, and so see 1.
    net.0.lock().unwrap().down[2] = true;
    let reader = SimReader {
        net: net.clone(),
        n: 3,
    };
    let r = proposer(&net, 1)
        .serial_read(
            &plan(3, &[2]),
            &reader,
            &part,
            &read_cmd(),
            Consistency::Serial,
        )
        .await
        .unwrap();
    assert_eq!(r.partitions.first().map(register_value), Some(1));
    let net = net.0.lock().unwrap();
    for n in &net.nodes[..2] {
        assert_eq!(n.data.map(|(v, _)| v), Some(1));
        assert_eq!(n.paxos.accepted, None, "the commit cleared the proposal");
    }
}
