//! Request bodies (v4/v5 spec §4.1), for protocol versions 3, 4 and 5.

use bytes::Bytes;

use super::primitives::Reader;
use super::{BatchQuery, BatchRequest, Opcode, QueryParameters, Request, Values};
use crate::error::CqlError;

type Result<T> = std::result::Result<T, CqlError>;

/// `<query_parameters>` flags (v5 §4.1.4). [byte] in v3/v4, [int] in v5.
pub mod query_flags {
    pub const VALUES: u32 = 0x01;
    pub const SKIP_METADATA: u32 = 0x02;
    pub const PAGE_SIZE: u32 = 0x04;
    pub const WITH_PAGING_STATE: u32 = 0x08;
    pub const SERIAL_CONSISTENCY: u32 = 0x10;
    pub const DEFAULT_TIMESTAMP: u32 = 0x20;
    pub const NAMES_FOR_VALUES: u32 = 0x40;
    /// v5 only.
    pub const KEYSPACE: u32 = 0x80;
    /// v5 only.
    pub const NOW_IN_SECONDS: u32 = 0x100;
}

/// PREPARE flags (v5 only).
pub const PREPARE_WITH_KEYSPACE: u32 = 0x01;

/// Envelope flag: the request carries a custom payload ([bytes map]) in front of the body.
const FLAG_CUSTOM_PAYLOAD: u8 = 0x04;

/// Decodes the body of a request envelope. `flags` are the envelope flags, `body` is
/// already decompressed.
pub fn decode_request(version: u8, flags: u8, opcode: Opcode, body: Bytes) -> Result<Request> {
    let mut r = Reader::new(body);
    // Custom payloads exist from v4 on; Shoal has no custom query handler, so it is
    // validated and dropped.
    if version >= 4 && flags & FLAG_CUSTOM_PAYLOAD != 0 {
        r.bytes_map()?;
    }
    match opcode {
        Opcode::Startup => {
            // Cassandra upper-cases keys: drivers send `CQL_VERSION`, but some send lower case.
            let map = r.string_map()?;
            Ok(Request::Startup(
                map.into_iter()
                    .map(|(k, v)| (k.to_ascii_uppercase(), v))
                    .collect(),
            ))
        }
        Opcode::Options => Ok(Request::Options),
        Opcode::Query => {
            let query = r.long_string()?;
            let params = query_parameters(&mut r, version)?;
            Ok(Request::Query { query, params })
        }
        Opcode::Prepare => {
            let query = r.long_string()?;
            let mut keyspace = None;
            if version >= 5 {
                let flags = r.int()? as u32;
                if flags & PREPARE_WITH_KEYSPACE != 0 {
                    keyspace = Some(r.string()?);
                }
            }
            Ok(Request::Prepare { query, keyspace })
        }
        Opcode::Execute => {
            let id = r.short_bytes()?;
            let result_metadata_id = if version >= 5 {
                Some(r.short_bytes()?)
            } else {
                None
            };
            let params = query_parameters(&mut r, version)?;
            Ok(Request::Execute {
                id,
                result_metadata_id,
                params,
            })
        }
        Opcode::Batch => batch(&mut r, version).map(Request::Batch),
        Opcode::Register => Ok(Request::Register(r.string_list()?)),
        Opcode::AuthResponse => Ok(Request::AuthResponse(r.bytes()?)),
        other => Err(CqlError::protocol(format!(
            "{other:?} (opcode 0x{:02X}) is a response opcode, not a request",
            other as u8
        ))),
    }
}

fn flags(r: &mut Reader, version: u8) -> Result<u32> {
    if version >= 5 {
        Ok(r.int()? as u32)
    } else {
        Ok(r.byte()? as u32)
    }
}

fn values(r: &mut Reader, version: u8, named: bool) -> Result<Values> {
    let n = r.short()? as usize;
    // Every value takes at least 4 bytes: cap the reservation by what is actually there.
    let cap = n.min(r.remaining() / 4);
    let mut values = Vec::with_capacity(cap);
    let mut names = named.then(|| Vec::with_capacity(cap));
    for _ in 0..n {
        if let Some(names) = names.as_mut() {
            names.push(r.string()?);
        }
        values.push(r.value(version)?);
    }
    Ok(Values { values, names })
}

fn query_parameters(r: &mut Reader, version: u8) -> Result<QueryParameters> {
    use query_flags::*;
    let consistency = r.consistency()?;
    let flags = flags(r, version)?;
    let values = if flags & VALUES != 0 {
        values(r, version, flags & NAMES_FOR_VALUES != 0)?
    } else {
        Values::default()
    };
    let page_size = (flags & PAGE_SIZE != 0).then(|| r.int()).transpose()?;
    let paging_state = if flags & WITH_PAGING_STATE != 0 {
        r.bytes()?
    } else {
        None
    };
    let serial_consistency = (flags & SERIAL_CONSISTENCY != 0)
        .then(|| r.consistency())
        .transpose()?;
    let default_timestamp = (flags & DEFAULT_TIMESTAMP != 0)
        .then(|| r.long())
        .transpose()?;
    let v5 = version >= 5;
    let keyspace = (v5 && flags & KEYSPACE != 0)
        .then(|| r.string())
        .transpose()?;
    let now_in_seconds = (v5 && flags & NOW_IN_SECONDS != 0)
        .then(|| r.int())
        .transpose()?;
    Ok(QueryParameters {
        consistency,
        values,
        skip_metadata: flags & SKIP_METADATA != 0,
        page_size,
        paging_state,
        serial_consistency,
        default_timestamp,
        keyspace,
        now_in_seconds,
    })
}

fn batch(r: &mut Reader, version: u8) -> Result<BatchRequest> {
    use query_flags::*;
    let batch_type = r.byte()?;
    if batch_type > 2 {
        return Err(CqlError::protocol(format!(
            "invalid BATCH type {batch_type} (expected 0 logged, 1 unlogged or 2 counter)"
        )));
    }
    let n = r.short()? as usize;
    let mut queries = Vec::with_capacity(n.min(r.remaining() / 7));
    for _ in 0..n {
        let kind = r.byte()?;
        let q = match kind {
            0 => {
                let query = r.long_string()?;
                // Names in BATCH are broken by design (CASSANDRA-10246); never read them.
                let values = values(r, version, false)?;
                BatchQuery::Query { query, values }
            }
            1 => {
                let id = r.short_bytes()?;
                let values = values(r, version, false)?;
                BatchQuery::Prepared { id, values }
            }
            k => {
                return Err(CqlError::protocol(format!(
                    "invalid BATCH child kind {k} (expected 0 query or 1 prepared id)"
                )));
            }
        };
        queries.push(q);
    }
    let consistency = r.consistency()?;
    let flags = flags(r, version)?;
    let serial_consistency = (flags & SERIAL_CONSISTENCY != 0)
        .then(|| r.consistency())
        .transpose()?;
    let default_timestamp = (flags & DEFAULT_TIMESTAMP != 0)
        .then(|| r.long())
        .transpose()?;
    let v5 = version >= 5;
    let keyspace = (v5 && flags & KEYSPACE != 0)
        .then(|| r.string())
        .transpose()?;
    let now_in_seconds = (v5 && flags & NOW_IN_SECONDS != 0)
        .then(|| r.int())
        .transpose()?;
    Ok(BatchRequest {
        batch_type,
        queries,
        consistency,
        serial_consistency,
        default_timestamp,
        keyspace,
        now_in_seconds,
    })
}

/// A request encoder for tests: what a driver would put in the body. It writes the
/// fields `decode_request` understands for `version` (so v5-only fields are dropped on
/// v3/v4 and unset values must not be used on v3).
#[cfg(test)]
pub(crate) fn encode_request(version: u8, request: &Request) -> (Opcode, bytes::BytesMut) {
    use super::primitives::*;
    use bytes::BytesMut;

    fn put_flags(out: &mut BytesMut, version: u8, flags: u32) {
        if version >= 5 {
            write_int(out, flags as i32);
        } else {
            write_byte(out, flags as u8);
        }
    }
    fn put_values(out: &mut BytesMut, v: &Values, with_names: bool) {
        write_short(out, v.values.len() as u16);
        for (i, value) in v.values.iter().enumerate() {
            if with_names {
                let names = v.names.as_ref().expect("names");
                write_string(out, &names[i]);
            }
            write_value(out, value);
        }
    }
    fn put_params(out: &mut BytesMut, version: u8, p: &QueryParameters) {
        use query_flags::*;
        let mut f = 0;
        if !p.values.values.is_empty() || p.values.names.is_some() {
            f |= VALUES;
        }
        if p.values.names.is_some() {
            f |= NAMES_FOR_VALUES;
        }
        if p.skip_metadata {
            f |= SKIP_METADATA;
        }
        if p.page_size.is_some() {
            f |= PAGE_SIZE;
        }
        if p.paging_state.is_some() {
            f |= WITH_PAGING_STATE;
        }
        if p.serial_consistency.is_some() {
            f |= SERIAL_CONSISTENCY;
        }
        if p.default_timestamp.is_some() {
            f |= DEFAULT_TIMESTAMP;
        }
        if version >= 5 && p.keyspace.is_some() {
            f |= KEYSPACE;
        }
        if version >= 5 && p.now_in_seconds.is_some() {
            f |= NOW_IN_SECONDS;
        }
        write_consistency(out, p.consistency);
        put_flags(out, version, f);
        if f & VALUES != 0 {
            put_values(out, &p.values, p.values.names.is_some());
        }
        if let Some(n) = p.page_size {
            write_int(out, n);
        }
        if let Some(s) = &p.paging_state {
            write_bytes(out, Some(s));
        }
        if let Some(c) = p.serial_consistency {
            write_consistency(out, c);
        }
        if let Some(t) = p.default_timestamp {
            write_long(out, t);
        }
        if version >= 5 {
            if let Some(k) = &p.keyspace {
                write_string(out, k);
            }
            if let Some(n) = p.now_in_seconds {
                write_int(out, n);
            }
        }
    }

    let mut out = BytesMut::new();
    let opcode = match request {
        Request::Startup(map) => {
            let mut pairs: Vec<_> = map.iter().collect();
            pairs.sort();
            write_string_map(&mut out, &pairs);
            Opcode::Startup
        }
        Request::Options => Opcode::Options,
        Request::Query { query, params } => {
            write_long_string(&mut out, query);
            put_params(&mut out, version, params);
            Opcode::Query
        }
        Request::Prepare { query, keyspace } => {
            write_long_string(&mut out, query);
            if version >= 5 {
                write_int(&mut out, keyspace.is_some() as i32);
                if let Some(k) = keyspace {
                    write_string(&mut out, k);
                }
            }
            Opcode::Prepare
        }
        Request::Execute {
            id,
            result_metadata_id,
            params,
        } => {
            write_short_bytes(&mut out, id);
            if version >= 5 {
                write_short_bytes(&mut out, result_metadata_id.as_deref().unwrap_or(&[]));
            }
            put_params(&mut out, version, params);
            Opcode::Execute
        }
        Request::Batch(b) => {
            write_byte(&mut out, b.batch_type);
            write_short(&mut out, b.queries.len() as u16);
            for q in &b.queries {
                match q {
                    BatchQuery::Query { query, values } => {
                        write_byte(&mut out, 0);
                        write_long_string(&mut out, query);
                        put_values(&mut out, values, false);
                    }
                    BatchQuery::Prepared { id, values } => {
                        write_byte(&mut out, 1);
                        write_short_bytes(&mut out, id);
                        put_values(&mut out, values, false);
                    }
                }
            }
            write_consistency(&mut out, b.consistency);
            let mut f = 0;
            if b.serial_consistency.is_some() {
                f |= query_flags::SERIAL_CONSISTENCY;
            }
            if b.default_timestamp.is_some() {
                f |= query_flags::DEFAULT_TIMESTAMP;
            }
            if version >= 5 && b.keyspace.is_some() {
                f |= query_flags::KEYSPACE;
            }
            if version >= 5 && b.now_in_seconds.is_some() {
                f |= query_flags::NOW_IN_SECONDS;
            }
            put_flags(&mut out, version, f);
            if let Some(c) = b.serial_consistency {
                write_consistency(&mut out, c);
            }
            if let Some(t) = b.default_timestamp {
                write_long(&mut out, t);
            }
            if version >= 5 {
                if let Some(k) = &b.keyspace {
                    write_string(&mut out, k);
                }
                if let Some(n) = b.now_in_seconds {
                    write_int(&mut out, n);
                }
            }
            Opcode::Batch
        }
        Request::Register(events) => {
            write_string_list(&mut out, events);
            Opcode::Register
        }
        Request::AuthResponse(token) => {
            write_bytes(&mut out, token.as_deref());
            Opcode::AuthResponse
        }
    };
    (opcode, out)
}
