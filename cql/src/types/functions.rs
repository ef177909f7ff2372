//! Native scalar functions (`now()`, `uuid()`, `toTimestamp()`, `blobAsInt()`, `intAsBlob()`...).

use bytes::Bytes;

use super::CqlType;
use crate::error::CqlResult;

/// A resolved native function.
#[derive(Clone, Debug)]
pub struct NativeFunction {
    /// Lower-case name as Cassandra prints it in column headers (`system.blobasint`).
    pub name: String,
    pub arg_types: Vec<CqlType>,
    pub return_type: CqlType,
    pub exec: fn(&[Option<Bytes>]) -> CqlResult<Option<Bytes>>,
}

/// Resolves `name` for arguments whose types are known (`None` for untyped literals or
/// markers) and, when known, the receiver's type.
pub fn resolve(
    name: &str,
    arg_types: &[Option<CqlType>],
    receiver: Option<&CqlType>,
) -> CqlResult<NativeFunction> {
    let _ = (name, arg_types, receiver);
    Err(crate::error::CqlError::invalid(format!(
        "Unknown function '{name}'"
    )))
}
