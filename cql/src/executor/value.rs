//! Cells and values: non-frozen collections stored one cell per element, and rows read from
//! the engine turned back into CQL values.

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use shoal_engine::{Cell, CellValue};

use crate::error::{CqlError, CqlResult};
use crate::types::{CqlType, Value, bytecomp, codec};

/// The path of a map key or set element: its byte-comparable form, so the engine keeps
/// elements in CQL order.
pub fn map_path(key_ty: &CqlType, key: &[u8]) -> CqlResult<Bytes> {
    let mut out = Vec::with_capacity(key.len() + 2);
    bytecomp::encode_component(key_ty, key, false, &mut out)?;
    Ok(Bytes::from(out))
}

static LIST_CLOCK: AtomicU64 = AtomicU64::new(0);

/// A fresh, strictly increasing list-element path (the role Cassandra's timeuuids play).
fn next_list_path(timestamp: i64) -> Bytes {
    let base = (timestamp as u64) ^ (1 << 63);
    let mut cur = LIST_CLOCK.load(Ordering::Relaxed);
    loop {
        let next = if base > cur { base } else { cur + 1 };
        match LIST_CLOCK.compare_exchange_weak(cur, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return Bytes::copy_from_slice(&next.to_be_bytes()),
            Err(actual) => cur = actual,
        }
    }
}

static PREPEND_CLOCK: AtomicU64 = AtomicU64::new(u64::MAX);

/// `n` fresh list-element paths in increasing order, all sorting before every path handed
/// out so far: appended paths live at or above 2^63, prepended ones below and decreasing,
/// which is how Cassandra's prepend runs its timeuuid clock backwards.
pub fn prepend_paths(timestamp: i64, n: usize) -> Vec<Bytes> {
    let n = n as u64;
    let base = (1u64 << 63).saturating_sub(timestamp.clamp(0, 1 << 62) as u64);
    let mut cur = PREPEND_CLOCK.load(Ordering::Relaxed);
    loop {
        let start = cur.min(base).saturating_sub(n);
        match PREPEND_CLOCK.compare_exchange_weak(cur, start, Ordering::Relaxed, Ordering::Relaxed)
        {
            Ok(_) => {
                return (start..start + n)
                    .map(|p| Bytes::copy_from_slice(&p.to_be_bytes()))
                    .collect();
            }
            Err(actual) => cur = actual,
        }
    }
}

/// Splits a serialized non-frozen collection or UDT into (path, cell value) pairs.
pub fn multicell_elements(
    ty: &CqlType,
    serialized: &[u8],
    timestamp: i64,
) -> CqlResult<Vec<(Bytes, Bytes)>> {
    let value = codec::decode(ty, serialized)?;
    Ok(match (ty, value) {
        (CqlType::Set { elem, .. }, Value::Set(items)) => items
            .iter()
            .map(|v| Ok((map_path(elem, &codec::encode(v))?, Bytes::new())))
            .collect::<CqlResult<_>>()?,
        (CqlType::Map { key, .. }, Value::Map(entries)) => entries
            .iter()
            .map(|(k, v)| Ok((map_path(key, &codec::encode(k))?, codec::encode(v))))
            .collect::<CqlResult<_>>()?,
        (CqlType::List { .. }, Value::List(items)) => items
            .iter()
            .map(|v| (next_list_path(timestamp), codec::encode(v)))
            .collect(),
        (CqlType::Udt { .. }, Value::Udt(fields)) => fields
            .iter()
            .enumerate()
            .filter_map(|(i, (_, v))| {
                v.as_ref().map(|v| {
                    (
                        Bytes::copy_from_slice(&(i as u16).to_be_bytes()),
                        codec::encode(v),
                    )
                })
            })
            .collect(),
        (_, Value::Empty) => Vec::new(),
        _ => {
            return Err(CqlError::invalid(format!(
                "Invalid value for a collection of type {}",
                ty.cql_name()
            )));
        }
    })
}

/// Paths to delete for `set - {...}` and `map - {keys}`.
pub fn multicell_removal_paths(ty: &CqlType, serialized: &[u8]) -> CqlResult<Vec<Bytes>> {
    match ty {
        CqlType::Set { elem, .. } | CqlType::Map { key: elem, .. } => {
            let set_ty = CqlType::Set {
                elem: elem.clone(),
                frozen: true,
            };
            match codec::decode(&set_ty, serialized)? {
                Value::Set(items) => items
                    .iter()
                    .map(|v| map_path(elem, &codec::encode(v)))
                    .collect(),
                _ => Ok(Vec::new()),
            }
        }
        _ => Err(CqlError::invalid(format!(
            "Removing elements from a column of type {} is not supported yet by this node",
            ty.cql_name()
        ))),
    }
}

/// Rebuilds a non-frozen collection or UDT from its live element cells (in path order).
/// An empty collection is null, as in Cassandra.
pub fn assemble(ty: &CqlType, cells: &[&Cell]) -> CqlResult<Option<Bytes>> {
    let live: Vec<(&Bytes, &Bytes)> = cells
        .iter()
        .filter_map(|c| match (&c.path, &c.value) {
            (Some(p), CellValue::Live { value, .. }) => Some((p, value)),
            _ => None,
        })
        .collect();
    if live.is_empty() {
        return Ok(None);
    }
    let value = match ty {
        CqlType::Set { elem, .. } => Value::Set(
            live.iter()
                .map(|(p, _)| decode_path(elem, p).and_then(|b| codec::decode(elem, &b)))
                .collect::<CqlResult<_>>()?,
        ),
        CqlType::Map { key, value, .. } => Value::Map(
            live.iter()
                .map(|(p, v)| {
                    Ok((
                        codec::decode(key, &decode_path(key, p)?)?,
                        codec::decode(value, v)?,
                    ))
                })
                .collect::<CqlResult<_>>()?,
        ),
        CqlType::List { elem, .. } => Value::List(
            live.iter()
                .map(|(_, v)| codec::decode(elem, v))
                .collect::<CqlResult<_>>()?,
        ),
        CqlType::Udt { def, .. } => {
            let mut fields: Vec<(String, Option<Value>)> =
                def.fields.iter().map(|(n, _)| (n.clone(), None)).collect();
            for (p, v) in live {
                if p.len() == 2 {
                    let i = u16::from_be_bytes([p[0], p[1]]) as usize;
                    if let (Some(slot), Some((_, fty))) = (fields.get_mut(i), def.fields.get(i)) {
                        slot.1 = Some(codec::decode(fty, v)?);
                    }
                }
            }
            Value::Udt(fields)
        }
        _ => return Ok(None),
    };
    Ok(Some(codec::encode(&value)))
}

fn decode_path(ty: &CqlType, path: &[u8]) -> CqlResult<Bytes> {
    bytecomp::decode_components(&[(ty.clone(), false)], path)?
        .into_iter()
        .next()
        .ok_or_else(|| CqlError::server("corrupt collection element path"))
}
