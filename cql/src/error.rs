//! CQL errors: one variant per native-protocol error code, carrying the body fields that
//! drivers read. Every error in the crate becomes one of these at the protocol edge.

use bytes::Bytes;

/// Consistency levels as the protocol numbers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum Consistency {
    Any = 0x0000,
    One = 0x0001,
    Two = 0x0002,
    Three = 0x0003,
    Quorum = 0x0004,
    All = 0x0005,
    LocalQuorum = 0x0006,
    EachQuorum = 0x0007,
    Serial = 0x0008,
    LocalSerial = 0x0009,
    LocalOne = 0x000A,
}

impl Consistency {
    pub fn from_u16(v: u16) -> Option<Consistency> {
        use Consistency::*;
        Some(match v {
            0 => Any,
            1 => One,
            2 => Two,
            3 => Three,
            4 => Quorum,
            5 => All,
            6 => LocalQuorum,
            7 => EachQuorum,
            8 => Serial,
            9 => LocalSerial,
            10 => LocalOne,
            _ => return None,
        })
    }

    /// The name Cassandra prints (`LOCAL_QUORUM`).
    pub fn name(self) -> &'static str {
        use Consistency::*;
        match self {
            Any => "ANY",
            One => "ONE",
            Two => "TWO",
            Three => "THREE",
            Quorum => "QUORUM",
            All => "ALL",
            LocalQuorum => "LOCAL_QUORUM",
            EachQuorum => "EACH_QUORUM",
            Serial => "SERIAL",
            LocalSerial => "LOCAL_SERIAL",
            LocalOne => "LOCAL_ONE",
        }
    }
}

/// The write types a Write_timeout / Write_failure body names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteType {
    Simple,
    Batch,
    UnloggedBatch,
    Counter,
    BatchLog,
    Cas,
    View,
    Cdc,
}

impl WriteType {
    pub fn name(self) -> &'static str {
        match self {
            WriteType::Simple => "SIMPLE",
            WriteType::Batch => "BATCH",
            WriteType::UnloggedBatch => "UNLOGGED_BATCH",
            WriteType::Counter => "COUNTER",
            WriteType::BatchLog => "BATCH_LOG",
            WriteType::Cas => "CAS",
            WriteType::View => "VIEW",
            WriteType::Cdc => "CDC",
        }
    }
}

/// An error as the client sees it. `Display` is the message string of the ERROR body.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CqlError {
    /// 0x0000
    #[error("{0}")]
    Server(String),
    /// 0x000A
    #[error("{0}")]
    Protocol(String),
    /// 0x0100
    #[error("{0}")]
    BadCredentials(String),
    /// 0x1000
    #[error("{message}")]
    Unavailable {
        message: String,
        consistency: Consistency,
        required: i32,
        alive: i32,
    },
    /// 0x1001
    #[error("{0}")]
    Overloaded(String),
    /// 0x1002
    #[error("{0}")]
    IsBootstrapping(String),
    /// 0x1003
    #[error("{0}")]
    Truncate(String),
    /// 0x1100
    #[error("{message}")]
    WriteTimeout {
        message: String,
        consistency: Consistency,
        received: i32,
        block_for: i32,
        write_type: WriteType,
        /// Only for `WriteType::Cas` (protocol v5).
        contentions: Option<u16>,
    },
    /// 0x1200
    #[error("{message}")]
    ReadTimeout {
        message: String,
        consistency: Consistency,
        received: i32,
        block_for: i32,
        data_present: bool,
    },
    /// 0x1300. `failures` lists (endpoint address, reason code); v4 sends only its length.
    #[error("{message}")]
    ReadFailure {
        message: String,
        consistency: Consistency,
        received: i32,
        block_for: i32,
        failures: Vec<(std::net::IpAddr, u16)>,
        data_present: bool,
    },
    /// 0x1400
    #[error("{message}")]
    FunctionFailure {
        message: String,
        keyspace: String,
        function: String,
        arg_types: Vec<String>,
    },
    /// 0x1500
    #[error("{message}")]
    WriteFailure {
        message: String,
        consistency: Consistency,
        received: i32,
        block_for: i32,
        failures: Vec<(std::net::IpAddr, u16)>,
        write_type: WriteType,
    },
    /// 0x1700 (v5)
    #[error("{message}")]
    CasWriteUnknown {
        message: String,
        consistency: Consistency,
        received: i32,
        block_for: i32,
    },
    /// 0x2000
    #[error("{0}")]
    Syntax(String),
    /// 0x2100
    #[error("{0}")]
    Unauthorized(String),
    /// 0x2200
    #[error("{0}")]
    Invalid(String),
    /// 0x2300
    #[error("{0}")]
    Config(String),
    /// 0x2400. `table` is empty for a keyspace.
    #[error("{message}")]
    AlreadyExists {
        message: String,
        keyspace: String,
        table: String,
    },
    /// 0x2500
    #[error("{message}")]
    Unprepared { message: String, id: Bytes },
}

impl CqlError {
    /// The protocol error code.
    pub fn code(&self) -> i32 {
        match self {
            CqlError::Server(_) => 0x0000,
            CqlError::Protocol(_) => 0x000A,
            CqlError::BadCredentials(_) => 0x0100,
            CqlError::Unavailable { .. } => 0x1000,
            CqlError::Overloaded(_) => 0x1001,
            CqlError::IsBootstrapping(_) => 0x1002,
            CqlError::Truncate(_) => 0x1003,
            CqlError::WriteTimeout { .. } => 0x1100,
            CqlError::ReadTimeout { .. } => 0x1200,
            CqlError::ReadFailure { .. } => 0x1300,
            CqlError::FunctionFailure { .. } => 0x1400,
            CqlError::WriteFailure { .. } => 0x1500,
            CqlError::CasWriteUnknown { .. } => 0x1700,
            CqlError::Syntax(_) => 0x2000,
            CqlError::Unauthorized(_) => 0x2100,
            CqlError::Invalid(_) => 0x2200,
            CqlError::Config(_) => 0x2300,
            CqlError::AlreadyExists { .. } => 0x2400,
            CqlError::Unprepared { .. } => 0x2500,
        }
    }

    pub fn invalid(msg: impl Into<String>) -> Self {
        CqlError::Invalid(msg.into())
    }

    pub fn syntax(msg: impl Into<String>) -> Self {
        CqlError::Syntax(msg.into())
    }

    pub fn server(msg: impl Into<String>) -> Self {
        CqlError::Server(msg.into())
    }

    pub fn protocol(msg: impl Into<String>) -> Self {
        CqlError::Protocol(msg.into())
    }
}

pub type CqlResult<T> = Result<T, CqlError>;
