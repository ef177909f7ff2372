//! Paxos on a clustered node: the [`Cas`] the executor runs conditional writes and serial
//! reads through, its transport over internode messaging, and the inbound side that
//! answers other proposers.

use std::sync::Arc;
use std::time::Duration;

use shoal_cql::coordinator::BoxFuture;
use shoal_cql::error::{Consistency, CqlError, CqlResult};
use shoal_cql::executor::Executor;
use shoal_cql::paxos::{Cas, CasRequest};
use shoal_cql::schema::Schema;
use shoal_engine::{PartitionRange, ReadCommand, ReadResult, TableId};
use shoal_gossip::internode::{Frame, MessageType, flags};
use shoal_gossip::replication::ReplicationStrategy;
use shoal_gossip::ring::HostId;

use super::ballot::BallotGen;
use super::codec::{
    Request, Response, decode_request, decode_response, encode_request, encode_response,
};
use super::proposer::{
    DataReader, Plan, Proposer, Timeouts, Transport, TransportError, quorum_for, unavailable,
};
use super::state::PartitionRef;
use super::store::Acceptor;
use crate::messaging::{HandlerFuture, Messaging};
use crate::topology::{Topology, TopologyCell};

/// The frame types this node's acceptor answers.
pub const REQUEST_TYPES: [MessageType; 3] = [
    MessageType::PaxosPrepareRequest,
    MessageType::PaxosProposeRequest,
    MessageType::PaxosCommitRequest,
];

/// The frame type of a request and of its response.
pub fn message_types(req: &Request) -> (MessageType, MessageType) {
    match req {
        Request::Prepare { .. } => (
            MessageType::PaxosPrepareRequest,
            MessageType::PaxosPrepareResponse,
        ),
        Request::Propose { .. } => (
            MessageType::PaxosProposeRequest,
            MessageType::PaxosProposeResponse,
        ),
        Request::Commit { .. } => (
            MessageType::PaxosCommitRequest,
            MessageType::PaxosCommitResponse,
        ),
    }
}

/// Requests to this node go straight to its acceptor; others over internode messaging.
pub struct NodeTransport {
    acceptor: Arc<Acceptor>,
    messaging: Messaging,
    topology: Arc<TopologyCell>,
    timeout: Duration,
}

impl Transport for NodeTransport {
    fn send(
        &self,
        to: HostId,
        req: Request,
    ) -> BoxFuture<'static, Result<Response, TransportError>> {
        let topology = self.topology.get();
        if to == topology.local() {
            let acceptor = self.acceptor.clone();
            return Box::pin(async move {
                acceptor
                    .handle(req)
                    .await
                    .map_err(|e| TransportError::Failed(to, e.to_string()))
            });
        }
        let messaging = self.messaging.clone();
        let addr = topology.address(&to);
        let timeout = self.timeout;
        Box::pin(async move {
            let addr = addr.ok_or_else(|| TransportError::Failed(to, "no address".into()))?;
            let (ty, _) = message_types(&req);
            let frame = messaging
                .request(addr, ty, encode_request(&req), timeout)
                .await
                .map_err(|e| TransportError::Failed(to, e.to_string()))?;
            decode_response(&frame.payload).map_err(|e| TransportError::Failed(to, e.to_string()))
        })
    }
}

/// Answers one inbound Paxos request frame (register for the three request types).
pub fn inbound(acceptor: Arc<Acceptor>, frame: Frame) -> HandlerFuture {
    Box::pin(async move {
        let failure = |msg: String| Frame {
            msg_type: MessageType::Unknown(0xff),
            flags: flags::FAILURE,
            request_id: frame.request_id,
            payload: msg.into_bytes(),
        };
        let req = match decode_request(&frame.payload) {
            Ok(r) => r,
            Err(e) => return Some(failure(e.to_string())),
        };
        let (_, resp_ty) = message_types(&req);
        Some(match acceptor.handle(req).await {
            Ok(resp) => Frame {
                msg_type: resp_ty,
                flags: 0,
                request_id: frame.request_id,
                payload: encode_response(&resp),
            },
            Err(e) => failure(e.to_string()),
        })
    })
}

/// Reads data through the executor (so through the cluster coordinator when installed).
struct ExecutorReader<'a> {
    ex: &'a Executor,
    schema: &'a Arc<Schema>,
}

impl DataReader for ExecutorReader<'_> {
    fn read<'a>(
        &'a self,
        cmd: &'a ReadCommand,
        consistency: Consistency,
    ) -> BoxFuture<'a, CqlResult<ReadResult>> {
        Box::pin(self.ex.read(self.schema, cmd.clone(), consistency))
    }
}

/// Acknowledgements a commit consistency needs, of `all` replicas, `local` of them in
/// this datacenter. EACH_QUORUM is counted as a quorum of all replicas.
pub fn block_for(cl: Consistency, all: usize, local: usize) -> usize {
    match cl {
        Consistency::Any => 0,
        Consistency::One | Consistency::LocalOne => 1,
        Consistency::Two => 2,
        Consistency::Three => 3,
        Consistency::Quorum | Consistency::EachQuorum | Consistency::Serial => all / 2 + 1,
        Consistency::LocalQuorum | Consistency::LocalSerial => local / 2 + 1,
        Consistency::All => all,
    }
}

/// Who takes part in the rounds of the partition at `token` of `table`.
pub fn plan(
    topo: &Topology,
    schema: &Schema,
    table: TableId,
    token: i64,
    serial: Consistency,
    commit: Consistency,
) -> CqlResult<Plan> {
    let def = schema
        .table_by_engine_id(table)
        .ok_or_else(|| CqlError::server("conditional write on an unknown table"))?;
    let ks = schema
        .keyspace(&def.keyspace)
        .ok_or_else(|| CqlError::server("conditional write on an unknown keyspace"))?;
    let dcs: Vec<String> = topo
        .metadata
        .ring()
        .hosts()
        .map(|(_, h)| h.dc.clone())
        .collect();
    let strategy =
        ReplicationStrategy::from_options(&ks.replication, dcs.iter().map(String::as_str))
            .map_err(|e| CqlError::server(format!("replication of {}: {e}", ks.name)))?;
    let replicas = topo.metadata.natural_replicas(&strategy, token);
    let local_dc = topo.local_dc().to_string();
    let is_local = |h: &HostId| topo.host(h).is_some_and(|i| i.dc == local_dc);
    let participants: Vec<HostId> = replicas
        .iter()
        .copied()
        .filter(|h| serial != Consistency::LocalSerial || is_local(h))
        .collect();
    if participants.is_empty() {
        return Err(unavailable(serial, 1, 0));
    }
    let live: Vec<HostId> = participants
        .iter()
        .copied()
        .filter(|h| topo.is_alive(h))
        .collect();
    let local_only = matches!(commit, Consistency::LocalQuorum | Consistency::LocalOne);
    let commit_targets: Vec<(HostId, bool)> = replicas
        .iter()
        .copied()
        .filter(|h| topo.is_alive(h))
        .map(|h| (h, !local_only || is_local(&h)))
        .collect();
    let n_local = replicas.iter().filter(|h| is_local(h)).count();
    Ok(Plan {
        required: participants.len() / 2 + 1,
        participants,
        live,
        commit_targets,
        commit_consistency: commit,
        commit_block_for: block_for(commit, replicas.len(), n_local),
    })
}

/// The node's [`Cas`].
pub struct PaxosService {
    ex: Arc<Executor>,
    topology: Arc<TopologyCell>,
    proposer: Proposer<NodeTransport>,
}

impl Cas for PaxosService {
    fn cas<'a>(&'a self, schema: Arc<Schema>, req: CasRequest<'a>) -> BoxFuture<'a, CqlResult<()>> {
        Box::pin(async move {
            let topo = self.topology.get();
            let plan = plan(&topo, &schema, req.table, req.token, req.serial, req.commit)?;
            let reader = ExecutorReader {
                ex: &self.ex,
                schema: &schema,
            };
            self.proposer.cas(&plan, &reader, req).await
        })
    }

    fn serial_read(
        &self,
        schema: Arc<Schema>,
        cmd: ReadCommand,
        serial: Consistency,
    ) -> BoxFuture<'_, CqlResult<ReadResult>> {
        Box::pin(async move {
            let PartitionRange::Single { token, key } = &cmd.partitions else {
                return Err(CqlError::invalid(
                    "SERIAL/LOCAL_SERIAL consistency may only be requested for one partition at a time",
                ));
            };
            let part = PartitionRef {
                table: cmd.table,
                token: *token,
                key: key.clone(),
            };
            let topo = self.topology.get();
            let plan = plan(
                &topo,
                &schema,
                cmd.table,
                *token,
                serial,
                quorum_for(serial),
            )?;
            let reader = ExecutorReader {
                ex: &self.ex,
                schema: &schema,
            };
            self.proposer
                .serial_read(&plan, &reader, &part, &cmd, serial)
                .await
        })
    }
}

/// Sets up Paxos on this node: the acceptor (returned, for the inbound handlers of
/// PAXOS_PREPARE/PROPOSE/COMMIT_REQUEST: see [`inbound`]) and the executor's [`Cas`].
pub fn install(
    ex: &Arc<Executor>,
    topology: Arc<TopologyCell>,
    messaging: Messaging,
    timeouts: Timeouts,
) -> Result<Arc<Acceptor>, super::store::AcceptorError> {
    let acceptor = Arc::new(Acceptor::new(ex.clone())?);
    let local = topology.get().local();
    let b = local.as_bytes();
    // Node bits: derived from the host id, so two nodes' ballots never tie.
    let node = u64::from_be_bytes(b[0..8].try_into().unwrap_or_default())
        ^ u64::from_be_bytes(b[8..16].try_into().unwrap_or_default());
    let transport = NodeTransport {
        acceptor: acceptor.clone(),
        messaging,
        topology: topology.clone(),
        timeout: timeouts.request,
    };
    let service = PaxosService {
        ex: ex.clone(),
        topology,
        proposer: Proposer {
            transport: Arc::new(transport),
            ballots: Arc::new(BallotGen::new(node)),
            timeouts,
        },
    };
    ex.set_cas(Arc::new(service));
    Ok(acceptor)
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashSet};

    use shoal_cql::executor::build_schema;
    use shoal_cql::schema::KeyspaceDef;
    use shoal_gossip::replication::TokenMetadata;
    use shoal_gossip::ring::{HostInfo, Ring};

    use super::*;

    fn host(i: u8) -> HostId {
        HostId([i; 16])
    }

    /// Hosts 1..=3 in dc1, 4..=5 in dc2; this node is host 1; `down` are not alive.
    fn topology(down: &[u8]) -> Topology {
        let mut ring = Ring::new();
        for i in 1..=5u8 {
            let info = HostInfo {
                addr: format!("127.0.0.{i}:7000").parse().unwrap(),
                dc: if i <= 3 { "dc1" } else { "dc2" }.into(),
                rack: "r1".into(),
            };
            ring.set_host(host(i), info, &[i64::from(i) * 1000])
                .unwrap();
        }
        Topology {
            metadata: TokenMetadata::new(host(1), ring),
            alive: (1..=5u8)
                .filter(|i| !down.contains(i))
                .map(host)
                .collect::<HashSet<_>>(),
        }
    }

    /// A keyspace replicated dc1:3, dc2:2 with one table; returns the schema and table.
    fn schema() -> (Schema, TableId) {
        let mut table = (**build_schema(Vec::new()).table("system", "paxos").unwrap()).clone();
        table.keyspace = "ks".into();
        table.id = uuid::Uuid::from_u128(42);
        let id = table.engine_id();
        let ks = KeyspaceDef {
            name: "ks".into(),
            replication: BTreeMap::from([
                (
                    "class".to_string(),
                    "org.apache.cassandra.locator.NetworkTopologyStrategy".to_string(),
                ),
                ("dc1".to_string(), "3".to_string()),
                ("dc2".to_string(), "2".to_string()),
            ]),
            durable_writes: true,
            tables: BTreeMap::from([("paxos".to_string(), Arc::new(table))]),
            types: BTreeMap::new(),
            is_system: false,
        };
        (build_schema(vec![ks]), id)
    }

    #[test]
    fn serial_counts_every_replica_local_serial_the_local_dc() {
        let (schema, table) = schema();
        let topo = topology(&[]);
        let p = plan(
            &topo,
            &schema,
            table,
            0,
            Consistency::Serial,
            Consistency::Quorum,
        )
        .unwrap();
        assert_eq!((p.participants.len(), p.required), (5, 3));
        assert_eq!(p.commit_block_for, 3);
        let p = plan(
            &topo,
            &schema,
            table,
            0,
            Consistency::LocalSerial,
            Consistency::LocalQuorum,
        )
        .unwrap();
        assert_eq!((p.participants.len(), p.required), (3, 2));
        assert!(p.participants.iter().all(|h| h.0[0] <= 3));
        // Commits go to all five; only dc1's acknowledgements count for LOCAL_QUORUM.
        assert_eq!(p.commit_targets.len(), 5);
        assert_eq!(p.commit_targets.iter().filter(|(_, c)| *c).count(), 3);
        assert_eq!(p.commit_block_for, 2);
        let p = plan(
            &topo,
            &schema,
            table,
            0,
            Consistency::Serial,
            Consistency::Any,
        )
        .unwrap();
        assert_eq!(p.commit_block_for, 0);
    }

    #[test]
    fn liveness_decides_what_is_available() {
        let (schema, table) = schema();
        // dc1 down to one node: SERIAL still has 3 of 5, LOCAL_SERIAL 1 of the 2 needed.
        let topo = topology(&[2, 3]);
        let p = plan(
            &topo,
            &schema,
            table,
            0,
            Consistency::Serial,
            Consistency::Quorum,
        )
        .unwrap();
        assert_eq!(p.live.len(), 3);
        assert!(p.live.len() >= p.required);
        let p = plan(
            &topo,
            &schema,
            table,
            0,
            Consistency::LocalSerial,
            Consistency::LocalQuorum,
        )
        .unwrap();
        assert_eq!((p.live.len(), p.required), (1, 2));
    }
}
