//! Who may found a new cluster (kubernetes.md §3 rule 4).
//!
//! Mass reboots where every pod found no reachable seed and seeded itself produced split
//! brains (§2 #3); waiting forever for pod `-0` deadlocked whole clusters (§2 #5). The rule:
//! a node that holds data never founds anything (it resumes its own membership and keeps
//! looking for peers); only an *empty* ordinal 0 may found, and only after a full discovery
//! round found no member that answers. Everybody else waits for a member.

/// What the node knows when it decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FoundingInput {
    /// The data directory already holds a host ID / tokens / SSTables.
    pub has_data: bool,
    /// StatefulSet ordinal; `None` outside a StatefulSet.
    pub ordinal: Option<u32>,
    /// Outside a StatefulSet, the classic Cassandra rule applies: a node whose seed list names
    /// only itself is the founder.
    pub only_seed_is_self: bool,
    /// At least one discovered address answered as a cluster member.
    pub member_answered: bool,
    /// Discovery completed at least one full round (every seed name resolved or failed, every
    /// address probed). Without it "nobody answered" means nothing.
    pub discovery_round_done: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FoundingDecision {
    /// Keep host ID and tokens, gossip to persisted peers and seeds; serve meanwhile.
    Resume,
    /// Form a new ring alone.
    Found,
    /// Join the cluster a member answered for (subject to [`crate::join`] ordering).
    Join,
    /// Nobody answered yet and this node may not found: look again later.
    Wait,
}

pub fn decide(input: FoundingInput) -> FoundingDecision {
    if input.has_data {
        return FoundingDecision::Resume;
    }
    if input.member_answered {
        return FoundingDecision::Join;
    }
    if !input.discovery_round_done {
        return FoundingDecision::Wait;
    }
    let founder = match input.ordinal {
        Some(ordinal) => ordinal == 0,
        None => input.only_seed_is_self,
    };
    if founder {
        FoundingDecision::Found
    } else {
        FoundingDecision::Wait
    }
}

#[cfg(test)]
mod tests {
    use super::FoundingDecision::*;
    use super::*;

    fn input(has_data: bool, ordinal: Option<u32>, answered: bool) -> FoundingInput {
        FoundingInput {
            has_data,
            ordinal,
            only_seed_is_self: false,
            member_answered: answered,
            discovery_round_done: true,
        }
    }

    #[test]
    fn a_node_with_data_never_founds() {
        for ordinal in [Some(0), Some(1), None] {
            for answered in [false, true] {
                assert_eq!(decide(input(true, ordinal, answered)), Resume);
            }
        }
        let mut i = input(true, Some(0), false);
        i.only_seed_is_self = true;
        assert_eq!(decide(i), Resume);
    }

    #[test]
    fn only_empty_ordinal_zero_founds_and_only_when_nobody_answers() {
        assert_eq!(decide(input(false, Some(0), false)), Found);
        assert_eq!(decide(input(false, Some(0), true)), Join);
        assert_eq!(decide(input(false, Some(1), false)), Wait);
        assert_eq!(decide(input(false, Some(7), true)), Join);
    }

    #[test]
    fn no_decision_to_found_before_discovery_finished_a_round() {
        let mut i = input(false, Some(0), false);
        i.discovery_round_done = false;
        assert_eq!(decide(i), Wait);
    }

    #[test]
    fn outside_a_statefulset_the_self_seed_founds() {
        let mut i = input(false, None, false);
        assert_eq!(decide(i), Wait);
        i.only_seed_is_self = true;
        assert_eq!(decide(i), Found);
        i.member_answered = true;
        assert_eq!(decide(i), Join);
    }
}
