//! The proposer: Cassandra 4.0's Paxos v1 coordinator logic (`StorageProxy.cas`,
//! `beginAndRepairPaxos`, `PrepareCallback`, `ProposeCallback`, `commitPaxos`), written
//! against two small traits, a [`Transport`] to the acceptors and a [`DataReader`] for
//! the partition's data, so the whole protocol runs in-process in tests with a simulated
//! network.

use std::sync::Arc;
use std::time::Duration;

use shoal_cql::coordinator::BoxFuture;
use shoal_cql::error::{Consistency, CqlError, CqlResult, WriteType};
use shoal_cql::paxos::{CasRequest, empty_partition};
use shoal_engine::{PartitionData, ReadCommand, ReadResult};
use shoal_gossip::ring::HostId;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::ballot::{Ballot, BallotGen};
use super::codec::{Request, Response};
use super::state::{Commit, PartitionRef};

/// Why a request to an acceptor got no usable answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    #[error("no answer from {0} in time")]
    Timeout(HostId),
    #[error("request to {0} failed: {1}")]
    Failed(HostId, String),
}

/// Delivers Paxos requests to acceptors (this node's own included).
pub trait Transport: Send + Sync + 'static {
    fn send(
        &self,
        to: HostId,
        req: Request,
    ) -> BoxFuture<'static, Result<Response, TransportError>>;
}

/// Reads the partition's data (not its Paxos state) at a consistency level.
pub trait DataReader: Send + Sync {
    fn read<'a>(
        &'a self,
        cmd: &'a ReadCommand,
        consistency: Consistency,
    ) -> BoxFuture<'a, CqlResult<ReadResult>>;
}

/// Who takes part in one partition's rounds.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The replicas the serial consistency counts (all replicas for SERIAL, the local
    /// datacenter's for LOCAL_SERIAL), and the live ones among them.
    pub participants: Vec<HostId>,
    pub live: Vec<HostId>,
    /// Promises and acceptances needed: a majority of `participants`.
    pub required: usize,
    /// Every live replica, each marked with whether its commit acknowledgement counts
    /// toward the commit consistency level (only local ones for LOCAL_*).
    pub commit_targets: Vec<(HostId, bool)>,
    /// The consistency commits wait for: the request's (ANY allowed); QUORUM or
    /// LOCAL_QUORUM for a serial read. Repairs of an in-progress round use it too, as
    /// Cassandra's `beginAndRepairPaxos` does.
    pub commit_consistency: Consistency,
    /// Acknowledgements the commit consistency needs (0 for ANY: do not wait).
    pub commit_block_for: usize,
}

/// Timeouts, as cassandra.yaml names them.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// `cas_contention_timeout_in_ms`: how long a CAS retries a contended round.
    pub cas_contention: Duration,
    /// `write_request_timeout_in_ms`: how long one phase waits for its replies.
    pub request: Duration,
    /// Upper bound of the random pause after losing a round (Cassandra: 100 ms).
    pub max_backoff: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            cas_contention: Duration::from_millis(1000),
            request: Duration::from_millis(2000),
            max_backoff: Duration::from_millis(100),
        }
    }
}

/// What the prepare phase learnt from a quorum of acceptors.
#[derive(Debug, Default)]
struct PrepareSummary {
    promised: bool,
    /// The highest ballot any acceptor reported (promised or accepted): the next ballot
    /// must be above it.
    highest_seen: Option<Ballot>,
    in_progress: Option<Commit>,
    most_recent_commit: Option<Commit>,
    /// Which responder had which most recent commit.
    commits_by_replica: Vec<(HostId, Option<Ballot>)>,
}

impl PrepareSummary {
    /// Responders that have not learnt the most recent commit.
    fn missing_most_recent_commit(&self) -> Vec<HostId> {
        let mrc = self.most_recent_commit.as_ref().map(|c| c.ballot);
        self.commits_by_replica
            .iter()
            .filter(|(_, b)| *b != mrc)
            .map(|(h, _)| *h)
            .collect()
    }
}

/// How a proposal fared.
#[derive(Debug, PartialEq, Eq)]
enum Proposed {
    Accepted,
    /// Refused by everyone who answered: nothing was accepted anywhere, retry is safe.
    Refused,
}

/// Where a phase's answers arrive, each with the acceptor that sent it.
type Replies = mpsc::UnboundedReceiver<(HostId, Result<Response, TransportError>)>;

/// Runs Paxos rounds for this node.
pub struct Proposer<T: Transport> {
    pub transport: Arc<T>,
    pub ballots: Arc<BallotGen>,
    pub timeouts: Timeouts,
}

/// The regular consistency a serial one reads and commits repairs at.
pub fn quorum_for(serial: Consistency) -> Consistency {
    if serial == Consistency::LocalSerial {
        Consistency::LocalQuorum
    } else {
        Consistency::Quorum
    }
}

fn cas_timeout(
    serial: Consistency,
    received: usize,
    block_for: usize,
    contentions: u32,
) -> CqlError {
    CqlError::WriteTimeout {
        message: format!("Operation timed out - received only {received} responses.",),
        consistency: serial,
        received: received as i32,
        block_for: block_for as i32,
        write_type: WriteType::Cas,
        contentions: Some(contentions.min(u32::from(u16::MAX)) as u16),
    }
}

pub(crate) fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

impl<T: Transport> Proposer<T> {
    /// Sends `req` to every target at once; answers arrive on the receiver. The sends run
    /// on their own tasks, so a phase that has heard enough can stop listening while late
    /// commits still reach their replicas.
    fn fan_out(
        &self,
        targets: impl IntoIterator<Item = HostId>,
        req: &Request,
    ) -> (usize, Replies) {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut n = 0;
        for host in targets {
            n += 1;
            let fut = self.transport.send(host, req.clone());
            let tx = tx.clone();
            let timeout = self.timeouts.request;
            tokio::spawn(async move {
                let r = match tokio::time::timeout(timeout, fut).await {
                    Ok(r) => r,
                    Err(_) => Err(TransportError::Timeout(host)),
                };
                let _ = tx.send((host, r));
            });
        }
        (n, rx)
    }

    async fn backoff(&self) {
        let max = self.timeouts.max_backoff.as_millis().max(1) as u64;
        let ms = rand::random_range(0..max);
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }

    async fn prepare(
        &self,
        part: &PartitionRef,
        ballot: Ballot,
        plan: &Plan,
        serial: Consistency,
        contentions: u32,
    ) -> CqlResult<PrepareSummary> {
        let req = Request::Prepare {
            part: part.clone(),
            ballot,
        };
        let (_, mut rx) = self.fan_out(plan.live.iter().copied(), &req);
        let deadline = Instant::now() + self.timeouts.request;
        let mut s = PrepareSummary {
            promised: true,
            ..Default::default()
        };
        let mut received = 0;
        while received < plan.required {
            let Ok(Some((host, r))) = tokio::time::timeout_at(deadline, rx.recv()).await else {
                return Err(cas_timeout(serial, received, plan.required, contentions));
            };
            let Ok(Response::Prepare(p)) = r else {
                continue;
            };
            received += 1;
            for b in [p.promised_ballot, p.in_progress.as_ref().map(|c| c.ballot)]
                .into_iter()
                .flatten()
            {
                s.highest_seen = s.highest_seen.max(Some(b));
            }
            if !p.promised {
                // One refusal is enough: some proposer holds a higher ballot.
                s.promised = false;
                return Ok(s);
            }
            if let Some(ip) = p.in_progress
                && s.in_progress.as_ref().is_none_or(|c| ip.ballot > c.ballot)
            {
                s.in_progress = Some(ip);
            }
            let mrc_ballot = p.most_recent_commit.as_ref().map(|c| c.ballot);
            s.commits_by_replica.push((host, mrc_ballot));
            if let Some(mrc) = p.most_recent_commit
                && s.most_recent_commit
                    .as_ref()
                    .is_none_or(|c| mrc.ballot > c.ballot)
            {
                s.most_recent_commit = Some(mrc);
            }
        }
        Ok(s)
    }

    /// Proposes to the live participants. `timeout_if_partial`: our own value, where an
    /// outcome that is neither a quorum of acceptances nor a refusal by all is unknown to
    /// us (a later round may complete it) and must be reported as a timeout, not retried.
    async fn propose(
        &self,
        part: &PartitionRef,
        proposal: &Commit,
        plan: &Plan,
        serial: Consistency,
        timeout_if_partial: bool,
        contentions: u32,
    ) -> CqlResult<Proposed> {
        let req = Request::Propose {
            part: part.clone(),
            proposal: proposal.clone(),
        };
        let (targets, mut rx) = self.fan_out(plan.live.iter().copied(), &req);
        let deadline = Instant::now() + self.timeouts.request;
        let (mut accepts, mut responses, mut failures) = (0usize, 0usize, 0usize);
        let fail_fast = !timeout_if_partial;
        loop {
            if accepts >= plan.required {
                return Ok(Proposed::Accepted);
            }
            if responses == targets
                || (fail_fast && accepts + (targets - responses) < plan.required)
            {
                break;
            }
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some((_, Ok(Response::Propose { accepted })))) => {
                    responses += 1;
                    accepts += usize::from(accepted);
                }
                // A failed request (a dead replica refusing connections) ends that
                // replica's part without being a refusal: it may have accepted and lost
                // its answer.
                Ok(Some((_, _))) => {
                    responses += 1;
                    failures += 1;
                }
                _ => return Err(cas_timeout(serial, accepts, plan.required, contentions)),
            }
        }
        // Only a refusal by everyone proves nothing was accepted; anything else may have
        // been chosen, so our own proposal's fate is unknown.
        if timeout_if_partial && (accepts > 0 || failures > 0) {
            return Err(cas_timeout(serial, accepts, plan.required, contentions));
        }
        Ok(Proposed::Refused)
    }

    /// Commits to every live replica, waiting for the commit consistency.
    async fn commit(&self, part: &PartitionRef, commit: &Commit, plan: &Plan) -> CqlResult<()> {
        let consistency = plan.commit_consistency;
        let counting = plan.commit_targets.iter().filter(|(_, c)| *c).count();
        if counting < plan.commit_block_for {
            return Err(unavailable(consistency, plan.commit_block_for, counting));
        }
        let req = Request::Commit {
            part: part.clone(),
            commit: commit.clone(),
        };
        let counts: Vec<(HostId, bool)> = plan.commit_targets.clone();
        let (_, mut rx) = self.fan_out(counts.iter().map(|(h, _)| *h), &req);
        let deadline = Instant::now() + self.timeouts.request;
        let mut acks = 0;
        while acks < plan.commit_block_for {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some((host, Ok(Response::Commit)))) => {
                    if counts.iter().any(|(h, c)| *h == host && *c) {
                        acks += 1;
                    }
                }
                Ok(Some(_)) => {}
                _ => {
                    return Err(CqlError::WriteTimeout {
                        message: format!("Operation timed out - received only {acks} responses."),
                        consistency,
                        received: acks as i32,
                        block_for: plan.commit_block_for as i32,
                        write_type: WriteType::Simple,
                        contentions: None,
                    });
                }
            }
        }
        Ok(())
    }

    /// Commits `commit` on the given replicas (those that missed it), waiting for their
    /// answers at most one request timeout; failures are retried by the next round.
    async fn repair_commit(&self, part: &PartitionRef, commit: &Commit, hosts: Vec<HostId>) {
        let req = Request::Commit {
            part: part.clone(),
            commit: commit.clone(),
        };
        let (n, mut rx) = self.fan_out(hosts, &req);
        let deadline = Instant::now() + self.timeouts.request;
        for _ in 0..n {
            if !matches!(
                tokio::time::timeout_at(deadline, rx.recv()).await,
                Ok(Some(_))
            ) {
                break;
            }
        }
    }

    /// Prepares a ballot that a quorum promised, after finishing whatever round a
    /// previous proposer left behind. Returns the ballot and how many times it lost.
    async fn begin_and_repair(
        &self,
        part: &PartitionRef,
        plan: &Plan,
        serial: Consistency,
        deadline: Instant,
        contentions: &mut u32,
    ) -> CqlResult<Ballot> {
        let mut min_micros = i64::MIN;
        while Instant::now() < deadline {
            let ballot = self.ballots.next(now_micros(), min_micros);
            let summary = self
                .prepare(part, ballot, plan, serial, *contentions)
                .await?;
            if let Some(seen) = summary.highest_seen {
                min_micros = min_micros.max(seen.micros.saturating_add(1));
            }
            if !summary.promised {
                *contentions += 1;
                self.backoff().await;
                continue;
            }
            let mrc_ballot = summary.most_recent_commit.as_ref().map(|c| c.ballot);
            // An accepted proposal newer than the last commit may have been chosen: it
            // must be finished (re-proposed under our ballot) before ours can be.
            if let Some(ip) = &summary.in_progress
                && !ip.update.is_empty()
                && Some(ip.ballot) > mrc_ballot
            {
                let refreshed = Commit {
                    ballot,
                    update: ip.update.clone(),
                };
                match self
                    .propose(part, &refreshed, plan, serial, false, *contentions)
                    .await?
                {
                    Proposed::Accepted => self.commit(part, &refreshed, plan).await?,
                    Proposed::Refused => {
                        *contentions += 1;
                        self.backoff().await;
                    }
                }
                continue;
            }
            // A quorum must know the last commit before a new value may follow it.
            let missing = summary.missing_most_recent_commit();
            if !missing.is_empty()
                && let Some(mrc) = &summary.most_recent_commit
            {
                self.repair_commit(part, mrc, missing).await;
                continue;
            }
            return Ok(ballot);
        }
        Err(cas_timeout(serial, 0, plan.required, *contentions))
    }

    /// One compare-and-set (Cassandra's `StorageProxy.cas`).
    pub async fn cas(
        &self,
        plan: &Plan,
        reader: &dyn DataReader,
        mut req: CasRequest<'_>,
    ) -> CqlResult<()> {
        let serial = req.serial;
        if plan.live.len() < plan.required {
            return Err(unavailable(serial, plan.required, plan.live.len()));
        }
        let part = PartitionRef {
            table: req.table,
            token: req.token,
            key: req.key.clone(),
        };
        let deadline = Instant::now() + self.timeouts.cas_contention;
        let mut contentions = 0u32;
        while Instant::now() < deadline {
            let ballot = self
                .begin_and_repair(&part, plan, serial, deadline, &mut contentions)
                .await?;
            let result = reader.read(&req.read, quorum_for(serial)).await?;
            let current = result
                .partitions
                .into_iter()
                .next()
                .unwrap_or_else(|| empty_partition(req.token, &req.key));
            let Some(update) = (req.decide)(&current, ballot.micros)? else {
                return Ok(());
            };
            let proposal = Commit { ballot, update };
            match self
                .propose(&part, &proposal, plan, serial, true, contentions)
                .await?
            {
                Proposed::Accepted => {
                    return self.commit(&part, &proposal, plan).await;
                }
                Proposed::Refused => {
                    contentions += 1;
                    self.backoff().await;
                }
            }
        }
        Err(cas_timeout(serial, 0, plan.required, contentions))
    }

    /// A read at SERIAL / LOCAL_SERIAL (Cassandra's `readWithPaxos`): finish any round in
    /// progress, then read at the matching quorum.
    pub async fn serial_read(
        &self,
        plan: &Plan,
        reader: &dyn DataReader,
        part: &PartitionRef,
        cmd: &ReadCommand,
        serial: Consistency,
    ) -> CqlResult<ReadResult> {
        if plan.live.len() < plan.required {
            return Err(unavailable(serial, plan.required, plan.live.len()));
        }
        let deadline = Instant::now() + self.timeouts.cas_contention;
        let mut contentions = 0;
        match self
            .begin_and_repair(part, plan, serial, deadline, &mut contentions)
            .await
        {
            Ok(_) => {}
            Err(CqlError::WriteTimeout {
                received,
                block_for,
                ..
            }) => {
                return Err(CqlError::ReadTimeout {
                    message: format!("Operation timed out - received only {received} responses."),
                    consistency: serial,
                    received,
                    block_for,
                    data_present: false,
                });
            }
            Err(e) => return Err(e),
        }
        reader.read(cmd, quorum_for(serial)).await
    }
}

pub fn unavailable(consistency: Consistency, required: usize, alive: usize) -> CqlError {
    CqlError::Unavailable {
        message: format!("Cannot achieve consistency level {}", consistency.name()),
        consistency,
        required: required as i32,
        alive: alive as i32,
    }
}

/// The partition's data as a read sees it (helper for readers of one partition).
pub fn first_partition(result: ReadResult, token: i64, key: &bytes::Bytes) -> PartitionData {
    result
        .partitions
        .into_iter()
        .next()
        .unwrap_or_else(|| empty_partition(token, key))
}
