//! Wire encoding of CQL values (native protocol v5 §6), shared by storage: a cell's bytes
//! are exactly its wire value.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bytes::Bytes;
use num_bigint::BigInt;
use uuid::Uuid;

use super::{CqlType, Value};
use crate::error::{CqlError, CqlResult};

/// Nanoseconds in a day; `time` values live in `0..NANOS_PER_DAY`.
pub const NANOS_PER_DAY: i64 = 86_400_000_000_000;

fn invalid(msg: impl Into<String>) -> CqlError {
    CqlError::invalid(msg)
}

/// Decodes and validates `bytes` as a value of `ty`.
pub fn decode(ty: &CqlType, bytes: &[u8]) -> CqlResult<Value> {
    let n = bytes.len();
    if n == 0 && accepts_empty(ty) {
        return Ok(match ty {
            CqlType::Ascii => Value::Ascii(String::new()),
            CqlType::Text => Value::Text(String::new()),
            CqlType::Blob => Value::Blob(Bytes::new()),
            CqlType::Custom(_) => Value::Custom(Bytes::new()),
            _ => Value::Empty,
        });
    }
    Ok(match ty {
        CqlType::Ascii => {
            if let Some(b) = bytes.iter().find(|b| **b > 127) {
                return Err(invalid(format!("Invalid byte for ascii: {}", *b as i8)));
            }
            Value::Ascii(String::from_utf8(bytes.to_vec()).map_err(|_| invalid("ascii"))?)
        }
        CqlType::Text => Value::Text(decode_utf8(bytes)?.to_owned()),
        CqlType::Blob => Value::Blob(Bytes::copy_from_slice(bytes)),
        CqlType::Custom(_) => Value::Custom(Bytes::copy_from_slice(bytes)),
        CqlType::Boolean => {
            if n != 1 {
                return Err(invalid(format!("Expected 1 or 0 byte value ({n})")));
            }
            Value::Boolean(bytes[0] != 0)
        }
        CqlType::Tinyint => {
            if n != 1 {
                return Err(invalid(format!("Expected 1 byte for a tinyint ({n})")));
            }
            Value::Tinyint(bytes[0] as i8)
        }
        CqlType::Smallint => {
            let b: [u8; 2] = bytes
                .try_into()
                .map_err(|_| invalid(format!("Expected 2 bytes for a smallint ({n})")))?;
            Value::Smallint(i16::from_be_bytes(b))
        }
        CqlType::Int => Value::Int(i32::from_be_bytes(
            bytes
                .try_into()
                .map_err(|_| invalid(format!("Expected 4 or 0 byte int ({n})")))?,
        )),
        CqlType::Bigint | CqlType::Counter => {
            let v = i64::from_be_bytes(
                bytes
                    .try_into()
                    .map_err(|_| invalid(format!("Expected 8 or 0 byte long ({n})")))?,
            );
            if *ty == CqlType::Counter {
                Value::Counter(v)
            } else {
                Value::Bigint(v)
            }
        }
        CqlType::Float => {
            Value::Float(f32::from_be_bytes(bytes.try_into().map_err(|_| {
                invalid(format!("Expected 4 or 0 byte value for a float ({n})"))
            })?))
        }
        CqlType::Double => {
            Value::Double(f64::from_be_bytes(bytes.try_into().map_err(|_| {
                invalid(format!("Expected 8 or 0 byte value for a double ({n})"))
            })?))
        }
        CqlType::Timestamp => {
            Value::Timestamp(i64::from_be_bytes(bytes.try_into().map_err(|_| {
                invalid(format!("Expected 8 or 0 byte long for date ({n})"))
            })?))
        }
        CqlType::Date => {
            Value::Date(u32::from_be_bytes(bytes.try_into().map_err(|_| {
                invalid(format!("Expected 4 byte long for date ({n})"))
            })?))
        }
        CqlType::Time => {
            let v = i64::from_be_bytes(
                bytes
                    .try_into()
                    .map_err(|_| invalid(format!("Expected 8 byte long for time ({n})")))?,
            );
            if !(0..NANOS_PER_DAY).contains(&v) {
                return Err(invalid(format!(
                    "Invalid time value ({v}): must be between 0 and {} nanoseconds",
                    NANOS_PER_DAY - 1
                )));
            }
            Value::Time(v)
        }
        CqlType::Uuid => Value::Uuid(
            Uuid::from_slice(bytes)
                .map_err(|_| invalid(format!("UUID should be 16 or 0 bytes ({n})")))?,
        ),
        CqlType::Timeuuid => {
            if n != 16 {
                return Err(invalid(format!("TimeUUID should be 16 or 0 bytes ({n})")));
            }
            if bytes[6] & 0xf0 != 0x10 {
                return Err(invalid("Invalid version for TimeUUID type."));
            }
            Value::Timeuuid(Uuid::from_slice(bytes).map_err(|_| invalid("TimeUUID"))?)
        }
        CqlType::Varint => Value::Varint(BigInt::from_signed_bytes_be(bytes)),
        CqlType::Decimal => {
            if n < 5 {
                return Err(invalid(format!("Expected 0 or at least 5 bytes ({n})")));
            }
            let scale = i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
            Value::Decimal {
                unscaled: BigInt::from_signed_bytes_be(&bytes[4..]),
                scale,
            }
        }
        CqlType::Inet => match n {
            4 => Value::Inet(IpAddr::V4(Ipv4Addr::new(
                bytes[0], bytes[1], bytes[2], bytes[3],
            ))),
            16 => {
                let mut a = [0u8; 16];
                a.copy_from_slice(bytes);
                Value::Inet(IpAddr::V6(Ipv6Addr::from(a)))
            }
            _ => {
                return Err(invalid(format!(
                    "Expected 4 or 16 byte inetaddress; got {}",
                    hex(bytes)
                )));
            }
        },
        CqlType::Duration => {
            let (months, days, nanos) = decode_duration(bytes)?;
            Value::Duration {
                months,
                days,
                nanos,
            }
        }
        CqlType::List { elem, .. } => Value::List(decode_elements(elem, bytes, "list")?),
        CqlType::Set { elem, .. } => Value::Set(decode_elements(elem, bytes, "set")?),
        CqlType::Map { key, value, .. } => {
            let mut r = Reader::new(bytes);
            let count = r.count("map")?;
            let mut out = Vec::with_capacity(count.min(1024));
            for _ in 0..count {
                let k = r.element("map")?;
                let v = r.element("map")?;
                out.push((decode(key, k)?, decode(value, v)?));
            }
            r.finish("map")?;
            Value::Map(out)
        }
        CqlType::Tuple(types) => {
            let fields = decode_fields(bytes, types.len(), "Tuple")?;
            let mut out = Vec::with_capacity(types.len());
            for (i, t) in types.iter().enumerate() {
                out.push(match fields.get(i).copied().flatten() {
                    Some(b) => Some(decode(t, b)?),
                    None => None,
                });
            }
            Value::Tuple(out)
        }
        CqlType::Udt { def, .. } => {
            let fields = decode_fields(bytes, def.fields.len(), "UDT")?;
            let mut out = Vec::with_capacity(def.fields.len());
            for (i, (name, t)) in def.fields.iter().enumerate() {
                let v = match fields.get(i).copied().flatten() {
                    Some(b) => Some(decode(t, b)?),
                    None => None,
                };
                out.push((name.clone(), v));
            }
            Value::Udt(out)
        }
        CqlType::Vector { elem, dimension } => {
            let parts = split_vector(elem, *dimension, bytes)?;
            let mut out = Vec::with_capacity(parts.len());
            for p in parts {
                out.push(decode(elem, p)?);
            }
            Value::Vector(out)
        }
        CqlType::Empty => {
            return Err(invalid(format!(
                "EmptyType only accept empty values, got {n} bytes"
            )));
        }
    })
}

/// Whether a zero-length value is valid for `ty` (Cassandra refuses it for the types
/// added in protocol v4 and for duration).
pub fn accepts_empty(ty: &CqlType) -> bool {
    !matches!(
        ty,
        CqlType::Tinyint | CqlType::Smallint | CqlType::Date | CqlType::Time | CqlType::Duration
    )
}

fn decode_utf8(bytes: &[u8]) -> CqlResult<&str> {
    std::str::from_utf8(bytes).map_err(|_| invalid("String didn't validate."))
}

fn decode_elements(elem: &CqlType, bytes: &[u8], what: &str) -> CqlResult<Vec<Value>> {
    let mut r = Reader::new(bytes);
    let count = r.count(what)?;
    let mut out = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        out.push(decode(elem, r.element(what)?)?);
    }
    r.finish(what)?;
    Ok(out)
}

/// Splits a tuple/UDT value into at most `max` fields (`None` = null).
pub(crate) fn decode_fields<'a>(
    bytes: &'a [u8],
    max: usize,
    what: &str,
) -> CqlResult<Vec<Option<&'a [u8]>>> {
    let mut r = Reader::new(bytes);
    let mut out = Vec::new();
    while !r.is_done() {
        if out.len() == max {
            return Err(invalid(format!(
                "{what} value contained too many fields (expected {max})"
            )));
        }
        let len = r.i32().ok_or_else(|| {
            invalid(format!(
                "Not enough bytes to read size of {}th component",
                out.len()
            ))
        })?;
        if len < 0 {
            out.push(None);
        } else {
            let b = r.take(len as usize).ok_or_else(|| {
                invalid(format!(
                    "Not enough bytes to read {}th component",
                    out.len()
                ))
            })?;
            out.push(Some(b));
        }
    }
    Ok(out)
}

/// Splits a collection value into its element values (elements of maps alternate key,
/// value).
pub(crate) fn collection_elements(bytes: &[u8], per_entry: usize) -> CqlResult<Vec<&[u8]>> {
    let what = if per_entry == 2 { "map" } else { "list" };
    let mut r = Reader::new(bytes);
    let count = r.count(what)?;
    let mut out = Vec::with_capacity(count.min(1024) * per_entry);
    for _ in 0..count * per_entry {
        out.push(r.element(what)?);
    }
    r.finish(what)?;
    Ok(out)
}

/// The fixed serialized size of `ty` inside a vector, if it has one.
pub fn fixed_size(ty: &CqlType) -> Option<usize> {
    Some(match ty {
        CqlType::Boolean | CqlType::Tinyint => 1,
        CqlType::Smallint => 2,
        CqlType::Int | CqlType::Float | CqlType::Date => 4,
        CqlType::Bigint
        | CqlType::Counter
        | CqlType::Double
        | CqlType::Timestamp
        | CqlType::Time => 8,
        CqlType::Uuid | CqlType::Timeuuid => 16,
        CqlType::Vector { elem, dimension } => {
            fixed_size(elem)?.checked_mul(*dimension as usize)?
        }
        _ => return None,
    })
}

pub(crate) fn split_vector<'a>(
    elem: &CqlType,
    dimension: u32,
    bytes: &'a [u8],
) -> CqlResult<Vec<&'a [u8]>> {
    let dim = dimension as usize;
    let mut out = Vec::with_capacity(dim.min(4096));
    if let Some(size) = fixed_size(elem) {
        if Some(bytes.len()) != size.checked_mul(dim) {
            return Err(invalid(format!(
                "Expected {} bytes for a vector of {dim} elements, got {}",
                size.saturating_mul(dim),
                bytes.len()
            )));
        }
        out.extend(bytes.chunks(size.max(1)).take(dim));
        return Ok(out);
    }
    let mut pos = 0;
    for _ in 0..dim {
        let (len, used) = read_unsigned_vint(&bytes[pos..])
            .ok_or_else(|| invalid("Not enough bytes to read a vector element size"))?;
        pos += used;
        let len = usize::try_from(len)
            .ok()
            .filter(|l| *l <= bytes.len() - pos)
            .ok_or_else(|| invalid("Not enough bytes to read a vector element"))?;
        out.push(&bytes[pos..pos + len]);
        pos += len;
    }
    if pos != bytes.len() {
        return Err(invalid("Unexpected extraneous bytes after vector value"));
    }
    Ok(out)
}

fn decode_duration(bytes: &[u8]) -> CqlResult<(i32, i32, i64)> {
    if bytes.len() < 3 {
        return Err(invalid(format!(
            "Expected at least 3 bytes for a duration ({})",
            bytes.len()
        )));
    }
    let mut pos = 0;
    let mut next = || -> CqlResult<i64> {
        let (v, used) = read_unsigned_vint(&bytes[pos..])
            .ok_or_else(|| invalid("Not enough bytes to read a duration"))?;
        pos += used;
        Ok(zigzag_decode(v))
    };
    let months = next()?;
    let days = next()?;
    let nanos = next()?;
    if pos != bytes.len() {
        return Err(invalid("Unexpected extraneous bytes after duration value"));
    }
    let months = i32::try_from(months).map_err(|_| {
        invalid(format!(
            "The duration months must be a 32 bits integer but was: {months}"
        ))
    })?;
    let days = i32::try_from(days).map_err(|_| {
        invalid(format!(
            "The duration days must be a 32 bits integer but was: {days}"
        ))
    })?;
    if !((months >= 0 && days >= 0 && nanos >= 0) || (months <= 0 && days <= 0 && nanos <= 0)) {
        return Err(invalid(format!(
            "The duration months, days and nanoseconds must be all of the same sign ({months}, {days}, {nanos})"
        )));
    }
    Ok((months, days, nanos))
}

/// Validates without building a `Value` (the fast path for bound values).
pub fn validate(ty: &CqlType, bytes: &[u8]) -> CqlResult<()> {
    match ty {
        CqlType::Blob | CqlType::Custom(_) => Ok(()),
        CqlType::Text => decode_utf8(bytes).map(|_| ()),
        CqlType::Varint => Ok(()),
        _ => decode(ty, bytes).map(|_| ()),
    }
}

/// Encodes a value. Sets and maps are written in the order given: callers sort them
/// (see [`super::compare`]).
pub fn encode(value: &Value) -> Bytes {
    let mut out = Vec::new();
    encode_into(value, &mut out);
    Bytes::from(out)
}

/// Appends the wire form of `value` to `out`.
pub fn encode_into(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Ascii(s) | Value::Text(s) => out.extend_from_slice(s.as_bytes()),
        Value::Blob(b) | Value::Custom(b) => out.extend_from_slice(b),
        Value::Boolean(b) => out.push(*b as u8),
        Value::Tinyint(v) => out.push(*v as u8),
        Value::Smallint(v) => out.extend_from_slice(&v.to_be_bytes()),
        Value::Int(v) => out.extend_from_slice(&v.to_be_bytes()),
        Value::Bigint(v) | Value::Counter(v) | Value::Timestamp(v) | Value::Time(v) => {
            out.extend_from_slice(&v.to_be_bytes())
        }
        Value::Varint(v) => out.extend_from_slice(&v.to_signed_bytes_be()),
        Value::Decimal { unscaled, scale } => {
            out.extend_from_slice(&scale.to_be_bytes());
            out.extend_from_slice(&unscaled.to_signed_bytes_be());
        }
        Value::Float(v) => out.extend_from_slice(&v.to_be_bytes()),
        Value::Double(v) => out.extend_from_slice(&v.to_be_bytes()),
        Value::Date(v) => out.extend_from_slice(&v.to_be_bytes()),
        Value::Uuid(u) | Value::Timeuuid(u) => out.extend_from_slice(u.as_bytes()),
        Value::Inet(IpAddr::V4(a)) => out.extend_from_slice(&a.octets()),
        Value::Inet(IpAddr::V6(a)) => out.extend_from_slice(&a.octets()),
        Value::Duration {
            months,
            days,
            nanos,
        } => encode_duration(*months, *days, *nanos, out),
        Value::List(items) | Value::Set(items) => {
            out.extend_from_slice(&(items.len() as i32).to_be_bytes());
            for v in items {
                with_length(out, |out| encode_into(v, out));
            }
        }
        Value::Map(entries) => {
            out.extend_from_slice(&(entries.len() as i32).to_be_bytes());
            for (k, v) in entries {
                with_length(out, |out| encode_into(k, out));
                with_length(out, |out| encode_into(v, out));
            }
        }
        Value::Tuple(fields) => {
            for f in fields {
                encode_optional(f.as_ref(), out);
            }
        }
        Value::Udt(fields) => {
            for (_, f) in fields {
                encode_optional(f.as_ref(), out);
            }
        }
        Value::Vector(items) => {
            for v in items {
                if value_fixed_size(v) {
                    encode_into(v, out);
                } else {
                    let mut tmp = Vec::new();
                    encode_into(v, &mut tmp);
                    write_unsigned_vint(tmp.len() as u64, out);
                    out.extend_from_slice(&tmp);
                }
            }
        }
        Value::Empty => {}
    }
}

/// Mirrors [`fixed_size`] for a value, so vectors encode without knowing their type.
fn value_fixed_size(v: &Value) -> bool {
    match v {
        Value::Boolean(_)
        | Value::Tinyint(_)
        | Value::Smallint(_)
        | Value::Int(_)
        | Value::Float(_)
        | Value::Date(_)
        | Value::Bigint(_)
        | Value::Counter(_)
        | Value::Double(_)
        | Value::Timestamp(_)
        | Value::Time(_)
        | Value::Uuid(_)
        | Value::Timeuuid(_) => true,
        Value::Vector(items) => items.iter().all(value_fixed_size),
        _ => false,
    }
}

fn encode_optional(v: Option<&Value>, out: &mut Vec<u8>) {
    match v {
        None => out.extend_from_slice(&(-1i32).to_be_bytes()),
        Some(v) => with_length(out, |out| encode_into(v, out)),
    }
}

/// Writes an [int]-length-prefixed value produced by `f`.
pub(crate) fn with_length(out: &mut Vec<u8>, f: impl FnOnce(&mut Vec<u8>)) {
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    f(out);
    let len = (out.len() - at - 4) as i32;
    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

/// Serializes a list/set from already serialized elements.
pub fn encode_collection<B: AsRef<[u8]>>(elements: &[B]) -> Bytes {
    let mut out = Vec::new();
    out.extend_from_slice(&(elements.len() as i32).to_be_bytes());
    for e in elements {
        out.extend_from_slice(&(e.as_ref().len() as i32).to_be_bytes());
        out.extend_from_slice(e.as_ref());
    }
    Bytes::from(out)
}

/// Serializes a map from already serialized keys and values.
pub fn encode_map<K: AsRef<[u8]>, V: AsRef<[u8]>>(entries: &[(K, V)]) -> Bytes {
    let mut out = Vec::new();
    out.extend_from_slice(&(entries.len() as i32).to_be_bytes());
    for (k, v) in entries {
        out.extend_from_slice(&(k.as_ref().len() as i32).to_be_bytes());
        out.extend_from_slice(k.as_ref());
        out.extend_from_slice(&(v.as_ref().len() as i32).to_be_bytes());
        out.extend_from_slice(v.as_ref());
    }
    Bytes::from(out)
}

/// Serializes a tuple or UDT from already serialized fields (`None` = null).
pub fn encode_fields<B: AsRef<[u8]>>(fields: &[Option<B>]) -> Bytes {
    let mut out = Vec::new();
    for f in fields {
        match f {
            None => out.extend_from_slice(&(-1i32).to_be_bytes()),
            Some(b) => {
                out.extend_from_slice(&(b.as_ref().len() as i32).to_be_bytes());
                out.extend_from_slice(b.as_ref());
            }
        }
    }
    Bytes::from(out)
}

/// Serializes a vector from already serialized elements.
pub fn encode_vector<B: AsRef<[u8]>>(elem: &CqlType, elements: &[B]) -> Bytes {
    let mut out = Vec::new();
    let fixed = fixed_size(elem).is_some();
    for e in elements {
        if !fixed {
            write_unsigned_vint(e.as_ref().len() as u64, &mut out);
        }
        out.extend_from_slice(e.as_ref());
    }
    Bytes::from(out)
}

pub fn encode_duration(months: i32, days: i32, nanos: i64, out: &mut Vec<u8>) {
    write_unsigned_vint(zigzag_encode(months as i64), out);
    write_unsigned_vint(zigzag_encode(days as i64), out);
    write_unsigned_vint(zigzag_encode(nanos), out);
}

pub fn zigzag_encode(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

pub fn zigzag_decode(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Cassandra's unsigned vint (`VIntCoding`): the count of leading one bits of the first byte
/// is the number of extra bytes.
pub fn write_unsigned_vint(v: u64, out: &mut Vec<u8>) {
    let magnitude = (v | 1).leading_zeros() as usize;
    let size = (639 - magnitude * 9) >> 6;
    if size == 1 {
        out.push(v as u8);
        return;
    }
    let extra = size - 1;
    let be = v.to_be_bytes();
    let start = out.len();
    if size == 9 {
        out.push(0xff);
        out.extend_from_slice(&be);
    } else {
        out.extend_from_slice(&be[8 - size..]);
        out[start] |= !(0xffu8 >> extra);
    }
}

/// Reads an unsigned vint, returning the value and the bytes used.
pub fn read_unsigned_vint(b: &[u8]) -> Option<(u64, usize)> {
    let first = *b.first()?;
    let extra = first.leading_ones() as usize;
    if b.len() < 1 + extra {
        return None;
    }
    let mut v = if extra == 8 {
        0
    } else {
        (first & (0xff >> extra)) as u64
    };
    for &x in &b[1..1 + extra] {
        v = (v << 8) | x as u64;
    }
    Some((v, 1 + extra))
}

pub(crate) fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push_str(&format!("{x:02x}"));
    }
    s
}

/// A cursor over [int]-prefixed values.
struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(b: &'a [u8]) -> Self {
        Reader { b, pos: 0 }
    }

    fn is_done(&self) -> bool {
        self.pos >= self.b.len()
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.b.len() - self.pos < n {
            return None;
        }
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        Some(s)
    }

    fn i32(&mut self) -> Option<i32> {
        self.take(4)
            .map(|s| i32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }

    fn count(&mut self, what: &str) -> CqlResult<usize> {
        let n = self
            .i32()
            .ok_or_else(|| invalid(format!("Not enough bytes to read a {what}")))?;
        if n < 0 {
            return Err(invalid(format!("Invalid negative size for a {what}: {n}")));
        }
        Ok(n as usize)
    }

    fn element(&mut self, what: &str) -> CqlResult<&'a [u8]> {
        let len = self
            .i32()
            .ok_or_else(|| invalid(format!("Not enough bytes to read a {what}")))?;
        if len < 0 {
            return Err(invalid("null is not supported inside collections"));
        }
        self.take(len as usize)
            .ok_or_else(|| invalid(format!("Not enough bytes to read a {what}")))
    }

    fn finish(&self, what: &str) -> CqlResult<()> {
        if self.pos != self.b.len() {
            return Err(invalid(format!(
                "Unexpected extraneous bytes after {what} value"
            )));
        }
        Ok(())
    }
}
