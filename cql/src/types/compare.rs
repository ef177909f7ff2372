//! Cassandra's ordering of serialized values of each type (the order of clustering columns,
//! set elements and map keys, and of ORDER BY / min / max).
//!
//! Values are assumed valid for their type; malformed input still yields a total order
//! (never a panic), falling back to bytewise comparison.

use std::cmp::Ordering;

use num_bigint::BigInt;

use super::CqlType;
use super::codec::{collection_elements, decode_fields, split_vector};

/// Compares two serialized values of `ty` in Cassandra's order.
pub fn compare(ty: &CqlType, a: &[u8], b: &[u8]) -> Ordering {
    // The empty value sorts before every other value of every type (AbstractType).
    match (a.is_empty(), b.is_empty()) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Less,
        (false, true) => return Ordering::Greater,
        _ => {}
    }
    match ty {
        CqlType::Boolean => (a[0] != 0).cmp(&(b[0] != 0)),
        CqlType::Tinyint
        | CqlType::Smallint
        | CqlType::Int
        | CqlType::Bigint
        | CqlType::Counter
        | CqlType::Timestamp
        | CqlType::Time => compare_signed_fixed(a, b),
        CqlType::Float => match (<[u8; 4]>::try_from(a), <[u8; 4]>::try_from(b)) {
            (Ok(x), Ok(y)) => {
                java_float_key(f32::from_be_bytes(x)).cmp(&java_float_key(f32::from_be_bytes(y)))
            }
            _ => a.cmp(b),
        },
        CqlType::Double => match (<[u8; 8]>::try_from(a), <[u8; 8]>::try_from(b)) {
            (Ok(x), Ok(y)) => {
                java_double_key(f64::from_be_bytes(x)).cmp(&java_double_key(f64::from_be_bytes(y)))
            }
            _ => a.cmp(b),
        },
        CqlType::Varint => BigInt::from_signed_bytes_be(a).cmp(&BigInt::from_signed_bytes_be(b)),
        CqlType::Decimal => compare_decimal(a, b),
        CqlType::Uuid => match (<[u8; 16]>::try_from(a), <[u8; 16]>::try_from(b)) {
            (Ok(x), Ok(y)) => uuid_key(&x).cmp(&uuid_key(&y)),
            _ => a.len().cmp(&b.len()).then_with(|| a.cmp(b)),
        },
        CqlType::Timeuuid => match (<[u8; 16]>::try_from(a), <[u8; 16]>::try_from(b)) {
            (Ok(x), Ok(y)) => timeuuid_key(&x).cmp(&timeuuid_key(&y)),
            _ => a.len().cmp(&b.len()).then_with(|| a.cmp(b)),
        },
        // date is unsigned with the epoch at 2^31; the rest are plain unsigned bytes.
        CqlType::Date
        | CqlType::Ascii
        | CqlType::Text
        | CqlType::Blob
        | CqlType::Inet
        | CqlType::Duration
        | CqlType::Custom(_)
        | CqlType::Empty => a.cmp(b),
        CqlType::List { elem, .. } | CqlType::Set { elem, .. } => {
            match (collection_elements(a, 1), collection_elements(b, 1)) {
                (Ok(x), Ok(y)) => compare_seq(&x, &y, |_| elem),
                _ => a.cmp(b),
            }
        }
        CqlType::Map { key, value, .. } => {
            match (collection_elements(a, 2), collection_elements(b, 2)) {
                (Ok(x), Ok(y)) => compare_seq(&x, &y, |i| if i % 2 == 0 { key } else { value }),
                _ => a.cmp(b),
            }
        }
        CqlType::Tuple(types) => compare_fields(a, b, types.len(), |i| types.get(i)),
        CqlType::Udt { def, .. } => {
            compare_fields(a, b, def.fields.len(), |i| def.fields.get(i).map(|f| &f.1))
        }
        CqlType::Vector { elem, dimension } => {
            match (
                split_vector(elem, *dimension, a),
                split_vector(elem, *dimension, b),
            ) {
                (Ok(x), Ok(y)) => compare_seq(&x, &y, |_| elem),
                _ => a.cmp(b),
            }
        }
    }
}

/// Element-wise, then shorter first (ListType/SetType/MapType on frozen values).
fn compare_seq<'t>(x: &[&[u8]], y: &[&[u8]], ty_of: impl Fn(usize) -> &'t CqlType) -> Ordering {
    for (i, (p, q)) in x.iter().zip(y.iter()).enumerate() {
        let c = compare(ty_of(i), p, q);
        if c != Ordering::Equal {
            return c;
        }
    }
    x.len().cmp(&y.len())
}

/// Component-wise with null first; missing trailing fields count as null.
fn compare_fields<'t>(
    a: &[u8],
    b: &[u8],
    n: usize,
    ty_of: impl Fn(usize) -> Option<&'t CqlType>,
) -> Ordering {
    let (x, y) = match (decode_fields(a, n, "Tuple"), decode_fields(b, n, "Tuple")) {
        (Ok(x), Ok(y)) => (x, y),
        _ => return a.cmp(b),
    };
    for i in 0..x.len().max(y.len()) {
        let p = x.get(i).copied().flatten();
        let q = y.get(i).copied().flatten();
        let c = match (p, q) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (Some(p), Some(q)) => match ty_of(i) {
                Some(t) => compare(t, p, q),
                None => p.cmp(q),
            },
        };
        if c != Ordering::Equal {
            return c;
        }
    }
    Ordering::Equal
}

/// Signed big-endian integers of equal width; other widths compare by value too.
fn compare_signed_fixed(a: &[u8], b: &[u8]) -> Ordering {
    if a.len() == b.len() {
        (a[0] as i8)
            .cmp(&(b[0] as i8))
            .then_with(|| a[1..].cmp(&b[1..]))
    } else {
        BigInt::from_signed_bytes_be(a).cmp(&BigInt::from_signed_bytes_be(b))
    }
}

/// A key whose integer order is Java's `Float.compare`: -0.0 < 0.0 and every NaN equal
/// and greatest.
pub(crate) fn java_float_key(f: f32) -> u32 {
    let bits = if f.is_nan() { 0x7fc0_0000 } else { f.to_bits() };
    if bits & 0x8000_0000 != 0 {
        !bits
    } else {
        bits | 0x8000_0000
    }
}

/// `Double.compare` as an integer key.
pub(crate) fn java_double_key(f: f64) -> u64 {
    let bits = if f.is_nan() {
        0x7ff8_0000_0000_0000
    } else {
        f.to_bits()
    };
    if bits & (1 << 63) != 0 {
        !bits
    } else {
        bits | (1 << 63)
    }
}

/// A time-based uuid's 60-bit timestamp with the version nibble on top:
/// time_hi(12) | time_mid(16) | time_low(32) (TimeUUIDType.reorderTimestampBytes).
pub(crate) fn reorder_msb(msb: u64) -> u64 {
    (msb << 48) | ((msb << 16) & 0xFFFF_0000_0000) | (msb >> 32)
}

/// Inverse of [`reorder_msb`].
pub(crate) fn unreorder_msb(r: u64) -> u64 {
    (r << 32) | ((r >> 16) & 0xFFFF_0000) | (r >> 48)
}

/// UUIDType's order as a 128-bit key: version first; time-based uuids by timestamp; then
/// the remaining bits unsigned.
pub(crate) fn uuid_key(b: &[u8; 16]) -> u128 {
    let msb = u64::from_be_bytes(b[..8].try_into().unwrap_or_default());
    let lsb = u64::from_be_bytes(b[8..].try_into().unwrap_or_default());
    let version = (msb >> 12) & 0xf;
    let hi = if version == 1 {
        reorder_msb(msb)
    } else {
        // Move the version nibble to the top; the other 60 bits keep their order.
        (version << 60) | ((msb >> 16) << 12) | (msb & 0xfff)
    };
    ((hi as u128) << 64) | lsb as u128
}

pub(crate) fn uuid_from_key(k: u128) -> [u8; 16] {
    let hi = (k >> 64) as u64;
    let lsb = k as u64;
    let version = hi >> 60;
    let msb = if version == 1 {
        unreorder_msb(hi)
    } else {
        let rest = hi & ((1 << 60) - 1);
        ((rest >> 12) << 16) | (version << 12) | (rest & 0xfff)
    };
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&msb.to_be_bytes());
    out[8..].copy_from_slice(&lsb.to_be_bytes());
    out
}

/// TimeUUIDType's order: timestamp, then the low 8 bytes as *signed* bytes.
pub(crate) fn timeuuid_key(b: &[u8; 16]) -> u128 {
    let msb = u64::from_be_bytes(b[..8].try_into().unwrap_or_default());
    let lsb = u64::from_be_bytes(b[8..].try_into().unwrap_or_default());
    ((reorder_msb(msb) as u128) << 64) | (lsb ^ 0x8080_8080_8080_8080) as u128
}

pub(crate) fn timeuuid_from_key(k: u128) -> [u8; 16] {
    let msb = unreorder_msb((k >> 64) as u64);
    let lsb = (k as u64) ^ 0x8080_8080_8080_8080;
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&msb.to_be_bytes());
    out[8..].copy_from_slice(&lsb.to_be_bytes());
    out
}

/// Numeric comparison of serialized decimals (BigDecimal.compareTo: 1.0 == 1.00).
fn compare_decimal(a: &[u8], b: &[u8]) -> Ordering {
    match (
        super::bytecomp::decimal_parts(a),
        super::bytecomp::decimal_parts(b),
    ) {
        (Some(x), Some(y)) => x.cmp_numeric(&y),
        _ => a.cmp(b),
    }
}
