//! CQL data types and values: the type model, wire encoding/decoding and validation,
//! CQL literals, Cassandra's comparison order, and the byte-comparable encoding of
//! clustering keys that the engine sorts with `memcmp`.

use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use num_bigint::BigInt;
use uuid::Uuid;

/// A user-defined type's definition.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UdtDef {
    pub keyspace: String,
    pub name: String,
    pub fields: Vec<(String, CqlType)>,
}

/// A CQL type. `frozen` flags matter only for collections and UDTs (tuples are always frozen).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum CqlType {
    Ascii,
    Bigint,
    Blob,
    Boolean,
    Counter,
    Decimal,
    Double,
    Duration,
    Float,
    Int,
    Smallint,
    Tinyint,
    Text,
    Timestamp,
    Date,
    Time,
    Uuid,
    Timeuuid,
    Varint,
    Inet,
    List {
        elem: Box<CqlType>,
        frozen: bool,
    },
    Set {
        elem: Box<CqlType>,
        frozen: bool,
    },
    Map {
        key: Box<CqlType>,
        value: Box<CqlType>,
        frozen: bool,
    },
    Tuple(Vec<CqlType>),
    Udt {
        def: Arc<UdtDef>,
        frozen: bool,
    },
    /// `vector<elem, n>` (Cassandra 5).
    Vector {
        elem: Box<CqlType>,
        dimension: u32,
    },
    /// A custom type known only by its Java marshal class name.
    Custom(String),
    /// The `empty` type of legacy tables.
    Empty,
}

/// A decoded CQL value. `None` inside tuples/UDTs is a null field.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Ascii(String),
    Text(String),
    Blob(Bytes),
    Boolean(bool),
    Tinyint(i8),
    Smallint(i16),
    Int(i32),
    Bigint(i64),
    Counter(i64),
    Varint(BigInt),
    /// unscaled × 10^-scale
    Decimal {
        unscaled: BigInt,
        scale: i32,
    },
    Float(f32),
    Double(f64),
    /// Milliseconds since the epoch.
    Timestamp(i64),
    /// Days with the epoch at 2^31.
    Date(u32),
    /// Nanoseconds since midnight.
    Time(i64),
    Uuid(Uuid),
    Timeuuid(Uuid),
    Inet(IpAddr),
    Duration {
        months: i32,
        days: i32,
        nanos: i64,
    },
    List(Vec<Value>),
    Set(Vec<Value>),
    Map(Vec<(Value, Value)>),
    Tuple(Vec<Option<Value>>),
    Udt(Vec<(String, Option<Value>)>),
    Vector(Vec<Value>),
    /// A zero-length value of a non-string type (distinct from null).
    Empty,
    /// Raw bytes of a custom type.
    Custom(Bytes),
}

pub mod bytecomp;
pub mod codec;
pub mod compare;
pub mod functions;
pub mod json;
pub mod literal;
pub mod names;
pub mod temporal;

#[cfg(test)]
mod props;
#[cfg(test)]
mod tests;

pub use literal::{BindSource, Evaluated, evaluate, to_cql_literal};

impl Value {
    /// The wire (and storage) bytes of this value.
    pub fn serialize(&self) -> Bytes {
        codec::encode(self)
    }

    /// Decodes and validates serialized bytes of type `ty`.
    pub fn deserialize(ty: &CqlType, bytes: &[u8]) -> crate::error::CqlResult<Value> {
        codec::decode(ty, bytes)
    }
}

/// Renders a value as CQL literal text (`'abc'`, `{1, 2}`, `0x01`).
pub fn format_value(ty: &CqlType, value: &Value) -> String {
    literal::to_cql_literal(ty, &codec::encode(value))
}
