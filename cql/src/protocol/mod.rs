//! The CQL native protocol, versions 3, 4 and 5: envelopes (frames) and their header,
//! request decoding, response encoding, body compression (v3/v4 LZ4 and Snappy), and the
//! v5 outer framing with CRC24/CRC32 and LZ4 segments.
//!
//! Everything here is pure: bytes in, messages out. The server in [`crate::server`] owns
//! the sockets. Layouts are documented in `docs/formats/native-protocol.md`.

use std::collections::HashMap;
use std::net::SocketAddr;

use bytes::Bytes;

use crate::error::{Consistency, CqlError};
use crate::types::CqlType;

/// Protocol versions Shoal speaks.
pub const MIN_VERSION: u8 = 3;
pub const MAX_VERSION: u8 = 5;
/// Cassandra refuses bodies over 256 MiB (native_transport_max_frame_size is smaller by
/// default); so do we, before allocating anything.
pub const MAX_BODY_LEN: u32 = 256 * 1024 * 1024;

/// Opcodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Opcode {
    Error = 0x00,
    Startup = 0x01,
    Ready = 0x02,
    Authenticate = 0x03,
    Options = 0x05,
    Supported = 0x06,
    Query = 0x07,
    Result = 0x08,
    Prepare = 0x09,
    Execute = 0x0A,
    Register = 0x0B,
    Event = 0x0C,
    Batch = 0x0D,
    AuthChallenge = 0x0E,
    AuthResponse = 0x0F,
    AuthSuccess = 0x10,
}

impl Opcode {
    pub fn from_u8(v: u8) -> Option<Opcode> {
        use Opcode::*;
        Some(match v {
            0x00 => Error,
            0x01 => Startup,
            0x02 => Ready,
            0x03 => Authenticate,
            0x05 => Options,
            0x06 => Supported,
            0x07 => Query,
            0x08 => Result,
            0x09 => Prepare,
            0x0A => Execute,
            0x0B => Register,
            0x0C => Event,
            0x0D => Batch,
            0x0E => AuthChallenge,
            0x0F => AuthResponse,
            0x10 => AuthSuccess,
            _ => return None,
        })
    }

    /// Whether clients may send this opcode.
    pub fn is_request(self) -> bool {
        use Opcode::*;
        matches!(
            self,
            Startup | Options | Query | Prepare | Execute | Register | Batch | AuthResponse
        )
    }
}

/// A bound value: `[value]` of the spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BoundValue {
    Null,
    Unset,
    Value(Bytes),
}

/// Values of a QUERY/EXECUTE/BATCH child.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Values {
    pub values: Vec<BoundValue>,
    /// Set when the client sent names (flag 0x40); same length as `values`.
    pub names: Option<Vec<String>>,
}

/// `<query_parameters>` of QUERY and EXECUTE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryParameters {
    pub consistency: Consistency,
    pub values: Values,
    pub skip_metadata: bool,
    pub page_size: Option<i32>,
    pub paging_state: Option<Bytes>,
    pub serial_consistency: Option<Consistency>,
    pub default_timestamp: Option<i64>,
    /// v5 only.
    pub keyspace: Option<String>,
    /// v5 only.
    pub now_in_seconds: Option<i32>,
}

/// One child of a BATCH message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BatchQuery {
    Query { query: String, values: Values },
    Prepared { id: Bytes, values: Values },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchRequest {
    /// 0 logged, 1 unlogged, 2 counter.
    pub batch_type: u8,
    pub queries: Vec<BatchQuery>,
    pub consistency: Consistency,
    pub serial_consistency: Option<Consistency>,
    pub default_timestamp: Option<i64>,
    pub keyspace: Option<String>,
    pub now_in_seconds: Option<i32>,
}

/// A decoded request message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// Keys upper-cased.
    Startup(HashMap<String, String>),
    Options,
    Query {
        query: String,
        params: QueryParameters,
    },
    Prepare {
        query: String,
        keyspace: Option<String>,
    },
    Execute {
        id: Bytes,
        result_metadata_id: Option<Bytes>,
        params: QueryParameters,
    },
    Batch(BatchRequest),
    Register(Vec<String>),
    AuthResponse(Option<Bytes>),
}

/// Column spec of result or bind metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColumnSpec {
    pub keyspace: String,
    pub table: String,
    pub name: String,
    pub ty: CqlType,
}

/// `<metadata>` of a Rows result.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RowsMetadata {
    pub columns: Vec<ColumnSpec>,
    pub paging_state: Option<Bytes>,
    /// Send flag No_metadata (column specs omitted; `columns.len()` still sent).
    pub no_metadata: bool,
    /// v5: the result metadata id when it changed.
    pub new_metadata_id: Option<Bytes>,
}

/// A Rows result: metadata plus cells (`None` = null).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rows {
    pub metadata: RowsMetadata,
    pub rows: Vec<Vec<Option<Bytes>>>,
}

/// A schema change, for RESULT Schema_change and EVENT SCHEMA_CHANGE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchemaChange {
    /// `CREATED` / `UPDATED` / `DROPPED`
    pub change: &'static str,
    /// `KEYSPACE` / `TABLE` / `TYPE` / `FUNCTION` / `AGGREGATE`
    pub target: &'static str,
    pub keyspace: String,
    /// Table/type/function name; empty for KEYSPACE.
    pub name: String,
    /// Function/aggregate argument types.
    pub arguments: Vec<String>,
}

/// RESULT bodies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResultBody {
    Void,
    Rows(Rows),
    SetKeyspace(String),
    Prepared {
        id: Bytes,
        /// v5 only.
        result_metadata_id: Bytes,
        /// Bind markers.
        bind_columns: Vec<ColumnSpec>,
        /// For each partition-key column in table order, the bind marker index supplying it.
        pk_indexes: Vec<u16>,
        result: RowsMetadata,
    },
    SchemaChange(SchemaChange),
}

/// EVENT bodies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// `NEW_NODE` / `REMOVED_NODE` / `MOVED_NODE`
    TopologyChange {
        change: &'static str,
        address: SocketAddr,
    },
    /// `UP` / `DOWN`
    StatusChange {
        change: &'static str,
        address: SocketAddr,
    },
    SchemaChange(SchemaChange),
}

/// A response message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    Error(CqlError),
    Ready,
    Authenticate(String),
    Supported(Vec<(String, Vec<String>)>),
    Result(ResultBody),
    Event(Event),
    AuthChallenge(Option<Bytes>),
    AuthSuccess(Option<Bytes>),
}

/// Extras carried in front of a response body.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResponseExtras {
    pub tracing_id: Option<[u8; 16]>,
    pub warnings: Vec<String>,
    pub custom_payload: Option<Vec<(String, Bytes)>>,
}
pub mod codec;
pub mod frame;
pub mod primitives;
pub mod request;
pub mod response;
