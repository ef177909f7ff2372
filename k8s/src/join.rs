//! Join ordering for new, empty nodes (kubernetes.md §3 rule 5).
//!
//! With `podManagementPolicy: Parallel` a scale-up by N starts N empty pods at once, and
//! concurrent bootstraps are unsafe (CASSANDRA-7069, scylla-operator#230). Instead of
//! OrderedReady (whose deadlocks are §2 #20) the nodes order themselves: nobody starts while
//! another node is JOINING, and among the nodes waiting, the lowest (set, ordinal, host ID)
//! goes first. Restarts of nodes that have data never come through here.

use std::time::Duration;

use crate::identity::PodIdentity;

/// A node as the gossip view reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub host_id: String,
    pub pod: Option<PodIdentity>,
    pub state: MemberState,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberState {
    Normal,
    /// Streaming its ranges right now.
    Joining,
    /// Empty, alive and announcing that it wants to join.
    WaitingToJoin,
    Leaving,
    Down,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JoinDecision {
    Proceed,
    /// Another node is bootstrapping: wait until it is NORMAL.
    WaitForJoining(String),
    /// Another waiting node comes first.
    WaitBehind(String),
}

/// Order among waiting nodes. Nodes outside a StatefulSet sort after pods, by host ID, so the
/// order is total and every node computes the same one from the same view.
fn order_key(m: &Member) -> (bool, &str, u32, &str) {
    match &m.pod {
        Some(p) => (false, p.set.as_str(), p.ordinal, m.host_id.as_str()),
        None => (true, "", 0, m.host_id.as_str()),
    }
}

/// May `me` (empty, alive, announcing WaitingToJoin) start bootstrapping given `view`?
/// `view` may or may not contain `me`; down members are ignored.
pub fn decide(me: &Member, view: &[Member]) -> JoinDecision {
    let others = view.iter().filter(|m| m.host_id != me.host_id);
    let mut first = me;
    for m in others {
        match m.state {
            MemberState::Joining => return JoinDecision::WaitForJoining(m.host_id.clone()),
            MemberState::WaitingToJoin if order_key(m) < order_key(first) => first = m,
            _ => {}
        }
    }
    if first.host_id == me.host_id {
        JoinDecision::Proceed
    } else {
        JoinDecision::WaitBehind(first.host_id.clone())
    }
}

/// How long to wait before looking again: grows with attempts, capped, with a per-node
/// jitter (from `seed`, e.g. the host ID hash) so waiting nodes do not poll in lockstep.
pub fn retry_delay(attempt: u32, seed: u64) -> Duration {
    let base_ms = 500u64.saturating_mul(1u64 << attempt.min(5)).min(10_000);
    let jitter_ms = seed
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(attempt as u64)
        % 500;
    Duration::from_millis(base_ms + jitter_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(set: &str, ordinal: u32, state: MemberState) -> Member {
        Member {
            host_id: format!("{set}-{ordinal}-id"),
            pod: Some(PodIdentity {
                set: set.into(),
                ordinal,
            }),
            state,
        }
    }

    use MemberState::*;

    #[test]
    fn lowest_waiting_ordinal_goes_first() {
        let view = vec![
            pod("s", 0, Normal),
            pod("s", 3, WaitingToJoin),
            pod("s", 1, Normal),
            pod("s", 2, WaitingToJoin),
            pod("s", 4, WaitingToJoin),
        ];
        assert_eq!(decide(&view[3], &view), JoinDecision::Proceed);
        assert_eq!(
            decide(&view[1], &view),
            JoinDecision::WaitBehind("s-2-id".into())
        );
        assert_eq!(
            decide(&view[4], &view),
            JoinDecision::WaitBehind("s-2-id".into())
        );
    }

    #[test]
    fn nobody_starts_while_someone_joins() {
        let view = vec![
            pod("s", 0, Normal),
            pod("s", 5, Joining),
            pod("s", 2, WaitingToJoin),
        ];
        assert_eq!(
            decide(&view[2], &view),
            JoinDecision::WaitForJoining("s-5-id".into())
        );
    }

    #[test]
    fn down_and_leaving_members_do_not_block() {
        let me = pod("s", 4, WaitingToJoin);
        let view = vec![pod("s", 0, Normal), pod("s", 1, Down), pod("s", 2, Leaving)];
        assert_eq!(decide(&me, &view), JoinDecision::Proceed);
    }

    #[test]
    fn every_node_computes_the_same_single_winner() {
        let view: Vec<Member> = [7, 3, 9, 4]
            .iter()
            .map(|&o| pod("s", o, WaitingToJoin))
            .chain([Member {
                host_id: "aaa".into(),
                pod: None,
                state: WaitingToJoin,
            }])
            .collect();
        let winners: Vec<_> = view
            .iter()
            .filter(|m| decide(m, &view) == JoinDecision::Proceed)
            .map(|m| m.host_id.clone())
            .collect();
        assert_eq!(winners, vec!["s-3-id".to_string()]);
    }

    #[test]
    fn retry_delay_is_bounded_and_jittered() {
        for attempt in 0..100 {
            let d = retry_delay(attempt, 42);
            assert!(d >= Duration::from_millis(500) && d < Duration::from_millis(10_500));
        }
        assert_ne!(retry_delay(3, 1), retry_delay(3, 2));
    }
}
