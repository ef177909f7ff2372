//! The three gossip messages (Cassandra's `GossipDigestSyn`, `GossipDigestAck`,
//! `GossipDigestAck2`). A round is: the initiator sends digests (SYN); the receiver answers
//! with what the initiator lacks and asks for what it lacks itself (ACK); the initiator sends
//! what was asked for (ACK2). ECHO probes a node directly before it is marked up. Each message names the cluster so a node wired to the wrong
//! cluster's seeds cannot merge two clusters.

use crate::ring::HostId;
use crate::state::EndpointState;

/// "I know `host` up to `(generation, max_version)`." In an ACK's requests it means "send me
/// what is newer than `max_version` of that generation" (0: everything).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Digest {
    pub host: HostId,
    pub generation: i64,
    pub max_version: u64,
}

/// Deltas for one node: heartbeat plus the changed states.
pub type Delta = (HostId, EndpointState);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Syn {
    pub cluster: String,
    pub digests: Vec<Digest>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ack {
    pub cluster: String,
    pub deltas: Vec<Delta>,
    pub requests: Vec<Digest>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ack2 {
    pub cluster: String,
    pub deltas: Vec<Delta>,
}

/// Cassandra's ECHO: a direct liveness probe. A node is marked up only after it answers one,
/// so a node we hear about only through third parties (say, across a one-way partition) is
/// not routed to. `host`/`generation` name the sender (request) or the responder (reply).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Echo {
    pub cluster: String,
    pub host: HostId,
    pub generation: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GossipMessage {
    Syn(Syn),
    Ack(Ack),
    Ack2(Ack2),
    Echo(Echo),
    EchoReply(Echo),
}

impl GossipMessage {
    pub fn cluster(&self) -> &str {
        match self {
            GossipMessage::Syn(m) => &m.cluster,
            GossipMessage::Ack(m) => &m.cluster,
            GossipMessage::Ack2(m) => &m.cluster,
            GossipMessage::Echo(m) | GossipMessage::EchoReply(m) => &m.cluster,
        }
    }
}
