//! The acceptor: what one replica remembers about one partition's Paxos rounds, and how
//! each request changes it (Cassandra's `PaxosState`). Pure: storage and locking belong to
//! the caller, which must serialise the requests of one partition.

use bytes::Bytes;
use shoal_engine::{Mutation, TableId};

use super::ballot::Ballot;

/// The partition a Paxos request is about.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PartitionRef {
    pub table: TableId,
    pub token: i64,
    pub key: Bytes,
}

/// A proposal or a commit: a ballot and the update it carries (Cassandra's `Commit`).
/// The update may be empty (a round that only had to order a read).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Commit {
    pub ballot: Ballot,
    pub update: Vec<Mutation>,
}

/// One partition's acceptor state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AcceptorState {
    /// The highest ballot promised (or accepted).
    pub promised: Option<Ballot>,
    /// The accepted proposal not yet known committed.
    pub accepted: Option<Commit>,
    /// The most recent commit learnt.
    pub most_recent_commit: Option<Commit>,
}

/// The answer to a prepare.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrepareResponse {
    pub promised: bool,
    /// The ballot the acceptor has promised after this request: ours when promised, the
    /// higher one that beat us otherwise (so the proposer can start above it).
    pub promised_ballot: Option<Ballot>,
    /// The accepted, not yet committed proposal (only meaningful when promised).
    pub in_progress: Option<Commit>,
    pub most_recent_commit: Option<Commit>,
}

impl AcceptorState {
    /// Prepare: promise iff the ballot is above every ballot promised. Returns the answer
    /// and whether the state changed (must be saved before answering).
    pub fn prepare(&mut self, ballot: Ballot) -> (PrepareResponse, bool) {
        let promise = self.promised.is_none_or(|p| ballot > p);
        if promise {
            self.promised = Some(ballot);
        }
        let response = PrepareResponse {
            promised: promise,
            promised_ballot: self.promised,
            in_progress: self.accepted.clone(),
            most_recent_commit: self.most_recent_commit.clone(),
        };
        (response, promise)
    }

    /// Propose: accept iff no higher ballot was promised (the proposer's own promise is
    /// equal). Accepting also promises the ballot. Returns whether it was accepted (and so
    /// the state changed).
    pub fn propose(&mut self, proposal: &Commit) -> bool {
        let accept = self.promised.is_none_or(|p| proposal.ballot >= p);
        if accept {
            self.promised = Some(proposal.ballot);
            self.accepted = Some(proposal.clone());
        }
        accept
    }

    /// Commit: learn `commit` as the most recent commit when it is newer, and forget an
    /// accepted proposal it supersedes. The promise is untouched: a commit is not a
    /// prepare. Returns whether the state changed. (The caller applies the update
    /// whatever this returns: applying an old commit again is harmless, its cells carry
    /// their original timestamps.)
    pub fn commit(&mut self, commit: &Commit) -> bool {
        let mut changed = false;
        if self
            .most_recent_commit
            .as_ref()
            .is_none_or(|m| commit.ballot > m.ballot)
        {
            self.most_recent_commit = Some(commit.clone());
            changed = true;
        }
        if self
            .accepted
            .as_ref()
            .is_some_and(|a| a.ballot <= commit.ballot)
        {
            self.accepted = None;
            changed = true;
        }
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(m: i64) -> Ballot {
        Ballot::new(m, 1)
    }

    fn c(m: i64) -> Commit {
        Commit {
            ballot: b(m),
            update: Vec::new(),
        }
    }

    #[test]
    fn prepare_promises_only_higher_ballots() {
        let mut s = AcceptorState::default();
        let (r, changed) = s.prepare(b(5));
        assert!(r.promised && changed);
        let (r, changed) = s.prepare(b(5));
        assert!(!r.promised && !changed, "equal ballot is refused");
        assert_eq!(r.promised_ballot, Some(b(5)));
        let (r, _) = s.prepare(b(3));
        assert!(!r.promised);
        assert_eq!(r.promised_ballot, Some(b(5)));
        assert!(s.prepare(b(6)).0.promised);
    }

    #[test]
    fn propose_accepts_at_or_above_promise() {
        let mut s = AcceptorState::default();
        s.prepare(b(5));
        assert!(!s.propose(&c(4)));
        assert!(s.propose(&c(5)));
        assert_eq!(s.accepted, Some(c(5)));
        // A later prepare reports the accepted proposal as in progress.
        let (r, _) = s.prepare(b(7));
        assert_eq!(r.in_progress, Some(c(5)));
        assert!(!s.propose(&c(6)), "promised 7 refuses 6");
        assert!(s.propose(&c(8)), "a higher proposal needs no prepare here");
        assert_eq!(s.promised, Some(b(8)));
    }

    #[test]
    fn commit_records_most_recent_and_clears_older_proposal() {
        let mut s = AcceptorState::default();
        s.prepare(b(5));
        s.propose(&c(5));
        assert!(s.commit(&c(5)));
        assert_eq!(s.accepted, None);
        assert_eq!(s.most_recent_commit, Some(c(5)));
        // An older commit arriving late changes nothing.
        assert!(!s.commit(&c(3)));
        assert_eq!(s.most_recent_commit, Some(c(5)));
        // A newer accepted proposal survives the commit of an older one.
        s.prepare(b(9));
        s.propose(&c(9));
        s.commit(&c(7));
        assert_eq!(s.accepted, Some(c(9)));
        assert_eq!(s.most_recent_commit, Some(c(7)));
        assert_eq!(s.promised, Some(b(9)));
    }
}
