//! What gossip spreads about each node: Cassandra's `EndpointState`, a heartbeat plus
//! versioned application states.
//!
//! Every value a node publishes about itself gets the next number from that node's single
//! version counter, and the counter restarts with each generation (process start). So
//! "newer" is `(generation, version)` compared lexicographically, and one number per node
//! (the highest version it holds) is enough to ask a peer for what is missing.

use std::collections::BTreeMap;
use std::fmt;

/// Application state keys. Ids are the wire encoding; unknown ids from newer nodes are kept
/// and passed on unchanged, so a mixed-version cluster still converges.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AppKey {
    /// BOOT, NORMAL, LEAVING, LEFT or shutdown; see [`Status`].
    Status,
    /// Disk load in bytes, as a decimal string.
    Load,
    /// Schema version UUID; nodes agree on schema when these match.
    Schema,
    Dc,
    Rack,
    ReleaseVersion,
    /// Address clients use (system.peers `rpc_address`).
    RpcAddress,
    /// Internode address `ip:port`. Endpoints are keyed by host id, so this is how a node that
    /// came back on another IP tells everyone its new address.
    InternalAddress,
    HostId,
    /// The node's tokens, comma-separated decimal.
    Tokens,
    /// Native protocol address `ip:port` (system.peers_v2 `native_address`/`native_port`).
    NativeAddress,
    /// The node's host name (a StatefulSet pod's `<set>-<ordinal>`): empty nodes order
    /// their joins by it.
    HostName,
    /// A key this version does not know.
    Unknown(u8),
}

impl AppKey {
    pub fn id(self) -> u8 {
        match self {
            AppKey::Status => 0,
            AppKey::Load => 1,
            AppKey::Schema => 2,
            AppKey::Dc => 3,
            AppKey::Rack => 4,
            AppKey::ReleaseVersion => 5,
            AppKey::RpcAddress => 6,
            AppKey::InternalAddress => 7,
            AppKey::HostId => 8,
            AppKey::Tokens => 9,
            AppKey::NativeAddress => 10,
            AppKey::HostName => 11,
            AppKey::Unknown(id) => id,
        }
    }

    pub fn from_id(id: u8) -> Self {
        match id {
            0 => AppKey::Status,
            1 => AppKey::Load,
            2 => AppKey::Schema,
            3 => AppKey::Dc,
            4 => AppKey::Rack,
            5 => AppKey::ReleaseVersion,
            6 => AppKey::RpcAddress,
            7 => AppKey::InternalAddress,
            8 => AppKey::HostId,
            9 => AppKey::Tokens,
            10 => AppKey::NativeAddress,
            11 => AppKey::HostName,
            other => AppKey::Unknown(other),
        }
    }
}

/// A node's lifecycle status, the value of [`AppKey::Status`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    Boot,
    Normal,
    Leaving,
    Left,
    /// Announced on clean shutdown so peers mark the node down at once.
    Shutdown,
    Other(String),
}

impl Status {
    pub fn parse(s: &str) -> Status {
        // Cassandra appends ",<token>" to some statuses; only the first word matters here.
        match s.split(',').next().unwrap_or("") {
            "BOOT" => Status::Boot,
            "NORMAL" => Status::Normal,
            "LEAVING" => Status::Leaving,
            "LEFT" => Status::Left,
            "shutdown" => Status::Shutdown,
            _ => Status::Other(s.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Status::Boot => "BOOT",
            Status::Normal => "NORMAL",
            Status::Leaving => "LEAVING",
            Status::Left => "LEFT",
            Status::Shutdown => "shutdown",
            Status::Other(s) => s,
        }
    }

    /// Statuses under which a node must not be considered alive, whatever its heartbeat says.
    pub fn is_dead(&self) -> bool {
        matches!(self, Status::Left | Status::Shutdown)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A value and the version it was published at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionedValue {
    pub value: String,
    pub version: u64,
}

/// Generation (set once per process start, must grow across restarts, e.g. Unix seconds)
/// and the heartbeat's own version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HeartBeat {
    pub generation: i64,
    pub version: u64,
}

/// Everything known about one node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointState {
    pub heartbeat: HeartBeat,
    pub states: BTreeMap<AppKey, VersionedValue>,
}

impl EndpointState {
    pub fn new(generation: i64) -> Self {
        EndpointState {
            heartbeat: HeartBeat {
                generation,
                version: 0,
            },
            states: BTreeMap::new(),
        }
    }

    /// Highest version of anything in this state; what a digest advertises.
    pub fn max_version(&self) -> u64 {
        self.states
            .values()
            .map(|v| v.version)
            .fold(self.heartbeat.version, u64::max)
    }

    /// The heartbeat plus every state newer than `version`.
    pub fn newer_than(&self, version: u64) -> EndpointState {
        EndpointState {
            heartbeat: self.heartbeat,
            states: self
                .states
                .iter()
                .filter(|(_, v)| v.version > version)
                .map(|(k, v)| (*k, v.clone()))
                .collect(),
        }
    }

    pub fn get(&self, key: AppKey) -> Option<&str> {
        self.states.get(&key).map(|v| v.value.as_str())
    }

    pub fn status(&self) -> Option<Status> {
        self.get(AppKey::Status).map(Status::parse)
    }

    /// Whether the node said it is gone (left the ring or shut down).
    pub fn is_dead_state(&self) -> bool {
        self.status().is_some_and(|s| s.is_dead())
    }

    /// Tokens from [`AppKey::Tokens`]; unparsable entries are skipped.
    pub fn tokens(&self) -> Vec<i64> {
        self.get(AppKey::Tokens)
            .map(|s| s.split(',').filter_map(|t| t.trim().parse().ok()).collect())
            .unwrap_or_default()
    }
}

/// Formats tokens for [`AppKey::Tokens`].
pub fn format_tokens(tokens: &[i64]) -> String {
    tokens
        .iter()
        .map(|t| t.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids_round_trip() {
        for id in 0..=255u8 {
            assert_eq!(AppKey::from_id(id).id(), id);
        }
        assert_eq!(AppKey::from_id(9), AppKey::Tokens);
    }

    #[test]
    fn status_parsing() {
        for s in ["BOOT", "NORMAL", "LEAVING", "LEFT", "shutdown"] {
            assert_eq!(Status::parse(s).as_str(), s);
        }
        assert_eq!(Status::parse("LEFT,123"), Status::Left);
        assert!(Status::Shutdown.is_dead() && !Status::Normal.is_dead());
        assert_eq!(Status::parse("weird"), Status::Other("weird".into()));
    }

    #[test]
    fn versions_and_deltas() {
        let mut s = EndpointState::new(5);
        s.heartbeat.version = 3;
        s.states.insert(
            AppKey::Tokens,
            VersionedValue {
                value: format_tokens(&[-1, 7]),
                version: 1,
            },
        );
        s.states.insert(
            AppKey::Status,
            VersionedValue {
                value: "NORMAL".into(),
                version: 4,
            },
        );
        assert_eq!(s.max_version(), 4);
        assert_eq!(s.newer_than(2).states.len(), 1);
        assert_eq!(s.newer_than(0).states.len(), 2);
        assert_eq!(s.tokens(), vec![-1, 7]);
        assert_eq!(s.status(), Some(Status::Normal));
        assert!(!s.is_dead_state());
    }
}
