//! Byte-comparable, prefix-free, reversible encoding of clustering key components, so the
//! engine orders rows with `memcmp` (`docs/formats/clustering-key.md`).
//!
//! Every component is a marker byte (`0x00` null, `0x01` empty value, `0x02` value)
//! followed, for a value, by a self-delimiting payload whose `memcmp` order is
//! [`super::compare`]'s order. Because the set of encodings of a type is prefix-free,
//! complementing every byte reverses the order exactly, which is how DESC works, and
//! concatenated components compare lexicographically.

use std::cmp::Ordering;

use bytes::Bytes;
use num_bigint::{BigInt, BigUint, Sign};

use super::CqlType;
use super::codec::{self, collection_elements, decode_fields, split_vector};
use super::compare::{
    java_double_key, java_float_key, timeuuid_from_key, timeuuid_key, uuid_from_key, uuid_key,
};
use crate::error::{CqlError, CqlResult};

const NULL: u8 = 0x00;
const EMPTY: u8 = 0x01;
const VALUE: u8 = 0x02;
/// Ends a collection; below both element markers so shorter collections sort first.
const END: u8 = 0x00;

fn corrupt(what: &str) -> CqlError {
    CqlError::server(format!("Corrupt byte-comparable clustering key: {what}"))
}

/// Appends the byte-comparable form of one serialized component. `desc` inverts the order.
pub fn encode_component(
    ty: &CqlType,
    value: &[u8],
    desc: bool,
    out: &mut Vec<u8>,
) -> CqlResult<()> {
    codec::validate(ty, value)?;
    let start = out.len();
    write_component(ty, Some(value), out)?;
    if desc {
        for b in &mut out[start..] {
            *b = !*b;
        }
    }
    Ok(())
}

/// Encodes a whole key (or prefix) of serialized components.
pub fn encode_key<B: AsRef<[u8]>>(types: &[(CqlType, bool)], values: &[B]) -> CqlResult<Vec<u8>> {
    let mut out = Vec::new();
    for ((ty, desc), v) in types.iter().zip(values) {
        encode_component(ty, v.as_ref(), *desc, &mut out)?;
    }
    Ok(out)
}

/// Splits a byte-comparable key (or prefix) back into serialized components.
pub fn decode_components(types: &[(CqlType, bool)], key: &[u8]) -> CqlResult<Vec<Bytes>> {
    let mut r = Reader {
        b: key,
        pos: 0,
        mask: 0,
    };
    let mut out = Vec::with_capacity(types.len());
    for (ty, desc) in types {
        if r.pos == key.len() {
            break;
        }
        r.mask = if *desc { 0xff } else { 0 };
        match read_component(ty, &mut r)? {
            Some(v) => out.push(Bytes::from(v)),
            None => return Err(corrupt("null component")),
        }
    }
    if r.pos != key.len() {
        return Err(corrupt("extraneous bytes"));
    }
    Ok(out)
}

fn write_component(ty: &CqlType, value: Option<&[u8]>, out: &mut Vec<u8>) -> CqlResult<()> {
    match value {
        None => out.push(NULL),
        Some([]) => out.push(EMPTY),
        Some(v) => {
            out.push(VALUE);
            write_payload(ty, v, out)?;
        }
    }
    Ok(())
}

fn write_payload(ty: &CqlType, v: &[u8], out: &mut Vec<u8>) -> CqlResult<()> {
    match ty {
        CqlType::Boolean => out.push((v[0] != 0) as u8),
        CqlType::Tinyint
        | CqlType::Smallint
        | CqlType::Int
        | CqlType::Bigint
        | CqlType::Counter
        | CqlType::Timestamp
        | CqlType::Time => {
            out.push(v[0] ^ 0x80);
            out.extend_from_slice(&v[1..]);
        }
        CqlType::Date => out.extend_from_slice(v),
        CqlType::Float => {
            let f = f32::from_be_bytes(v.try_into().map_err(|_| corrupt("float"))?);
            out.extend_from_slice(&java_float_key(f).to_be_bytes());
        }
        CqlType::Double => {
            let f = f64::from_be_bytes(v.try_into().map_err(|_| corrupt("double"))?);
            out.extend_from_slice(&java_double_key(f).to_be_bytes());
        }
        CqlType::Uuid => {
            let b: [u8; 16] = v.try_into().map_err(|_| corrupt("uuid"))?;
            out.extend_from_slice(&uuid_key(&b).to_be_bytes());
        }
        CqlType::Timeuuid => {
            let b: [u8; 16] = v.try_into().map_err(|_| corrupt("timeuuid"))?;
            out.extend_from_slice(&timeuuid_key(&b).to_be_bytes());
        }
        CqlType::Varint => write_varint(&BigInt::from_signed_bytes_be(v), out),
        CqlType::Decimal => {
            let d = decimal_parts(v).ok_or_else(|| corrupt("decimal"))?;
            write_decimal(&d, out);
        }
        CqlType::Ascii
        | CqlType::Text
        | CqlType::Blob
        | CqlType::Inet
        | CqlType::Duration
        | CqlType::Custom(_)
        | CqlType::Empty => write_escaped(v, out),
        CqlType::List { elem, .. } | CqlType::Set { elem, .. } => {
            for e in collection_elements(v, 1)? {
                write_component(elem, Some(e), out)?;
            }
            out.push(END);
        }
        CqlType::Map { key, value, .. } => {
            for (i, e) in collection_elements(v, 2)?.into_iter().enumerate() {
                write_component(if i % 2 == 0 { key } else { value }, Some(e), out)?;
            }
            out.push(END);
        }
        CqlType::Tuple(types) => {
            let fields = decode_fields(v, types.len(), "Tuple")?;
            for (i, t) in types.iter().enumerate() {
                write_component(t, fields.get(i).copied().flatten(), out)?;
            }
        }
        CqlType::Udt { def, .. } => {
            let fields = decode_fields(v, def.fields.len(), "UDT")?;
            for (i, (_, t)) in def.fields.iter().enumerate() {
                write_component(t, fields.get(i).copied().flatten(), out)?;
            }
        }
        CqlType::Vector { elem, dimension } => {
            for e in split_vector(elem, *dimension, v)? {
                write_component(elem, Some(e), out)?;
            }
        }
    }
    Ok(())
}

/// `0x00` is escaped as `00 FF` and the value ends with `00 00`, so a shorter value that is
/// a prefix of a longer one sorts first and no encoding is a prefix of another.
fn write_escaped(v: &[u8], out: &mut Vec<u8>) {
    for &b in v {
        out.push(b);
        if b == 0 {
            out.push(0xff);
        }
    }
    out.extend_from_slice(&[0, 0]);
}

/// Sign and magnitude length in a header byte (longer magnitudes are further from zero),
/// then the magnitude, complemented for negatives.
fn write_varint(v: &BigInt, out: &mut Vec<u8>) {
    let (sign, mag) = v.to_bytes_be();
    if sign == Sign::NoSign {
        out.push(0x80);
        return;
    }
    let len = mag.len();
    if sign == Sign::Plus {
        if len <= 0x7e {
            out.push(0x80 + len as u8);
        } else {
            out.push(0xff);
            out.extend_from_slice(&(len as u32).to_be_bytes());
        }
        out.extend_from_slice(&mag);
    } else {
        if len <= 0x7e {
            out.push(0x7f - len as u8);
        } else {
            out.push(0x00);
            out.extend_from_slice(&(!(len as u32)).to_be_bytes());
        }
        out.extend(mag.iter().map(|b| !b));
    }
}

/// A decimal normalised to `±0.digits × 10^exponent`, with no leading or trailing zero
/// digit, so numerically equal decimals (1.0, 1.00) have one form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DecimalParts {
    negative: bool,
    /// Decimal digits 0..=9; empty for zero.
    digits: Vec<u8>,
    exponent: i64,
}

impl DecimalParts {
    pub(crate) fn cmp_numeric(&self, o: &DecimalParts) -> Ordering {
        let rank = |d: &DecimalParts| {
            if d.digits.is_empty() {
                1
            } else if d.negative {
                0
            } else {
                2
            }
        };
        let (ra, rb) = (rank(self), rank(o));
        if ra != rb || ra == 1 {
            return ra.cmp(&rb);
        }
        let c = self
            .exponent
            .cmp(&o.exponent)
            .then_with(|| self.digits.cmp(&o.digits));
        if self.negative { c.reverse() } else { c }
    }

    /// Back to the wire form: [int] scale + varint unscaled.
    fn to_wire(&self) -> CqlResult<Vec<u8>> {
        if self.digits.is_empty() {
            return Ok(vec![0, 0, 0, 0, 0]);
        }
        let mut digits = self.digits.clone();
        let mut scale = (digits.len() as i64)
            .checked_sub(self.exponent)
            .ok_or_else(|| corrupt("decimal exponent"))?;
        // Stripping trailing zeros can push the scale below i32::MIN; put zeros back. A
        // valid key never needs more than its original digit count, so cap the padding.
        if scale < i32::MIN as i64 {
            let pad = i32::MIN as i64 - scale;
            if pad > 1 << 24 {
                return Err(corrupt("decimal exponent"));
            }
            digits.resize(digits.len() + pad as usize, 0);
            scale = i32::MIN as i64;
        }
        let scale = i32::try_from(scale).map_err(|_| corrupt("decimal scale"))?;
        let mag = BigUint::from_radix_be(&digits, 10).ok_or_else(|| corrupt("decimal"))?;
        let sign = if self.negative {
            Sign::Minus
        } else {
            Sign::Plus
        };
        let mut out = scale.to_be_bytes().to_vec();
        out.extend_from_slice(&BigInt::from_biguint(sign, mag).to_signed_bytes_be());
        Ok(out)
    }
}

/// Normalises a serialized (non-empty) decimal.
pub(crate) fn decimal_parts(v: &[u8]) -> Option<DecimalParts> {
    if v.len() < 5 {
        return None;
    }
    let scale = i32::from_be_bytes([v[0], v[1], v[2], v[3]]);
    let unscaled = BigInt::from_signed_bytes_be(&v[4..]);
    let (sign, mag) = unscaled.into_parts();
    let mut digits = mag.to_radix_be(10);
    if sign == Sign::NoSign {
        return Some(DecimalParts {
            negative: false,
            digits: Vec::new(),
            exponent: 0,
        });
    }
    let exponent = digits.len() as i64 - scale as i64;
    while digits.last() == Some(&0) {
        digits.pop();
    }
    Some(DecimalParts {
        negative: sign == Sign::Minus,
        digits,
        exponent,
    })
}

/// Sign byte, then exponent and base-100 digit pairs (1..=100, `00`-terminated), all
/// complemented for negatives so that larger magnitudes sort first.
fn write_decimal(d: &DecimalParts, out: &mut Vec<u8>) {
    if d.digits.is_empty() {
        out.push(0x80);
        return;
    }
    out.push(if d.negative { 0x40 } else { 0xc0 });
    let start = out.len();
    out.extend_from_slice(&((d.exponent as u64) ^ (1 << 63)).to_be_bytes());
    for pair in d.digits.chunks(2) {
        let lo = pair.get(1).copied().unwrap_or(0);
        out.push(pair[0] * 10 + lo + 1);
    }
    out.push(0);
    if d.negative {
        for b in &mut out[start..] {
            *b = !*b;
        }
    }
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
    /// 0xFF while reading a DESC component (or a negative decimal body).
    mask: u8,
}

impl Reader<'_> {
    fn byte(&mut self) -> CqlResult<u8> {
        let b = *self.b.get(self.pos).ok_or_else(|| corrupt("truncated"))?;
        self.pos += 1;
        Ok(b ^ self.mask)
    }

    fn peek(&self) -> CqlResult<u8> {
        self.b
            .get(self.pos)
            .map(|b| b ^ self.mask)
            .ok_or_else(|| corrupt("truncated"))
    }

    fn bytes(&mut self, n: usize) -> CqlResult<Vec<u8>> {
        if self.b.len() - self.pos < n {
            return Err(corrupt("truncated"));
        }
        let out = self.b[self.pos..self.pos + n]
            .iter()
            .map(|b| b ^ self.mask)
            .collect();
        self.pos += n;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> CqlResult<[u8; N]> {
        let v = self.bytes(N)?;
        v.try_into().map_err(|_| corrupt("truncated"))
    }
}

fn read_component(ty: &CqlType, r: &mut Reader) -> CqlResult<Option<Vec<u8>>> {
    match r.byte()? {
        NULL => Ok(None),
        EMPTY => Ok(Some(Vec::new())),
        VALUE => read_payload(ty, r).map(Some),
        _ => Err(corrupt("bad marker")),
    }
}

fn read_payload(ty: &CqlType, r: &mut Reader) -> CqlResult<Vec<u8>> {
    Ok(match ty {
        CqlType::Boolean => vec![r.byte()?],
        CqlType::Tinyint
        | CqlType::Smallint
        | CqlType::Int
        | CqlType::Bigint
        | CqlType::Counter
        | CqlType::Timestamp
        | CqlType::Time => {
            let n = codec::fixed_size(ty).unwrap_or(8);
            let mut v = r.bytes(n)?;
            v[0] ^= 0x80;
            v
        }
        CqlType::Date => r.bytes(4)?,
        CqlType::Float => {
            let k = u32::from_be_bytes(r.array()?);
            let bits = if k & 0x8000_0000 != 0 {
                k & 0x7fff_ffff
            } else {
                !k
            };
            bits.to_be_bytes().to_vec()
        }
        CqlType::Double => {
            let k = u64::from_be_bytes(r.array()?);
            let bits = if k & (1 << 63) != 0 {
                k & !(1 << 63)
            } else {
                !k
            };
            bits.to_be_bytes().to_vec()
        }
        CqlType::Uuid => uuid_from_key(u128::from_be_bytes(r.array()?)).to_vec(),
        CqlType::Timeuuid => timeuuid_from_key(u128::from_be_bytes(r.array()?)).to_vec(),
        CqlType::Varint => read_varint(r)?.to_signed_bytes_be(),
        CqlType::Decimal => read_decimal(r)?.to_wire()?,
        CqlType::Ascii
        | CqlType::Text
        | CqlType::Blob
        | CqlType::Inet
        | CqlType::Duration
        | CqlType::Custom(_)
        | CqlType::Empty => read_escaped(r)?,
        CqlType::List { elem, .. } | CqlType::Set { elem, .. } => {
            let mut items = Vec::new();
            while r.peek()? != END {
                items.push(read_component(elem, r)?.ok_or_else(|| corrupt("null element"))?);
            }
            r.byte()?;
            codec::encode_collection(&items).to_vec()
        }
        CqlType::Map { key, value, .. } => {
            let mut entries = Vec::new();
            while r.peek()? != END {
                let k = read_component(key, r)?.ok_or_else(|| corrupt("null key"))?;
                let v = read_component(value, r)?.ok_or_else(|| corrupt("null value"))?;
                entries.push((k, v));
            }
            r.byte()?;
            codec::encode_map(&entries).to_vec()
        }
        CqlType::Tuple(types) => {
            let mut fields = Vec::with_capacity(types.len());
            for t in types {
                fields.push(read_component(t, r)?);
            }
            codec::encode_fields(&fields).to_vec()
        }
        CqlType::Udt { def, .. } => {
            let mut fields = Vec::with_capacity(def.fields.len());
            for (_, t) in &def.fields {
                fields.push(read_component(t, r)?);
            }
            codec::encode_fields(&fields).to_vec()
        }
        CqlType::Vector { elem, dimension } => {
            let mut items = Vec::new();
            for _ in 0..*dimension {
                items.push(read_component(elem, r)?.ok_or_else(|| corrupt("null element"))?);
            }
            codec::encode_vector(elem, &items).to_vec()
        }
    })
}

fn read_escaped(r: &mut Reader) -> CqlResult<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let b = r.byte()?;
        if b != 0 {
            out.push(b);
            continue;
        }
        match r.byte()? {
            0xff => out.push(0),
            0x00 => return Ok(out),
            _ => return Err(corrupt("bad escape")),
        }
    }
}

fn read_len(r: &mut Reader, complement: bool) -> CqlResult<usize> {
    let v = u32::from_be_bytes(r.array()?);
    let len = if complement { !v } else { v } as usize;
    if len > r.b.len() - r.pos {
        return Err(corrupt("truncated varint"));
    }
    Ok(len)
}

fn read_varint(r: &mut Reader) -> CqlResult<BigInt> {
    let h = r.byte()?;
    Ok(match h {
        0x80 => BigInt::from(0),
        0x81..=0xff => {
            let len = if h == 0xff {
                read_len(r, false)?
            } else {
                (h - 0x80) as usize
            };
            BigInt::from_bytes_be(Sign::Plus, &r.bytes(len)?)
        }
        _ => {
            let len = if h == 0 {
                read_len(r, true)?
            } else {
                (0x7f - h) as usize
            };
            let mag: Vec<u8> = r.bytes(len)?.into_iter().map(|b| !b).collect();
            BigInt::from_bytes_be(Sign::Minus, &mag)
        }
    })
}

fn read_decimal(r: &mut Reader) -> CqlResult<DecimalParts> {
    let negative = match r.byte()? {
        0x80 => {
            return Ok(DecimalParts {
                negative: false,
                digits: Vec::new(),
                exponent: 0,
            });
        }
        0x40 => true,
        0xc0 => false,
        _ => return Err(corrupt("decimal sign")),
    };
    let saved = r.mask;
    if negative {
        r.mask ^= 0xff;
    }
    let exponent = (u64::from_be_bytes(r.array()?) ^ (1 << 63)) as i64;
    let mut digits = Vec::new();
    loop {
        let b = r.byte()?;
        if b == 0 {
            break;
        }
        if b > 100 {
            r.mask = saved;
            return Err(corrupt("decimal digits"));
        }
        digits.push((b - 1) / 10);
        digits.push((b - 1) % 10);
    }
    r.mask = saved;
    while digits.last() == Some(&0) {
        digits.pop();
    }
    if digits.is_empty() || digits[0] == 0 {
        return Err(corrupt("decimal digits"));
    }
    Ok(DecimalParts {
        negative,
        digits,
        exponent,
    })
}
